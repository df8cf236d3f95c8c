"""Signed releases (edge.signing): keys made once and kept, a release that names every file, and a device that
takes a bundle only when a trusted key signed it and every byte is the one signed."""

import copy
import json
import stat

import pytest

from edge.errors import EdgeError
from edge.signing import check_files, create_keys, load_private_key, load_public_key, sign_bundle, verify
from tests.bundles import carried_bundle


@pytest.fixture
def keys(tmp_path):
    private, public = create_keys(tmp_path / "keys")
    return private, public


@pytest.fixture
def bundle(tmp_path):
    return carried_bundle(tmp_path / "bundle")


def test_a_key_pair_is_private_from_its_first_byte_and_never_replaced(keys, tmp_path):
    private, public = keys
    assert stat.S_IMODE(private.stat().st_mode) == 0o600 and private.read_bytes().startswith(b"-----BEGIN PRIVATE")
    assert public.read_bytes().startswith(b"-----BEGIN PUBLIC KEY")
    before = private.read_bytes()
    with pytest.raises(EdgeError, match="already holds a key pair: devices trust its public key, so it is kept"):
        create_keys(tmp_path / "keys")
    assert private.read_bytes() == before
    (tmp_path / "file").write_text("x")
    with pytest.raises(EdgeError, match="is a file: give a folder for the key pair"):
        create_keys(tmp_path / "file")


def test_a_signed_bundle_verifies_with_its_public_key_and_names_every_file(keys, bundle):
    private, public = keys
    signed = json.loads(json.dumps(sign_bundle(bundle, private)))  # as it travels
    release = verify(signed, [load_public_key(public)])
    assert sorted(release["files"]) == ["edge.json", "labels.txt", "model.tflite"]
    assert release["files"]["model.tflite"]["bytes"] == (bundle / "model.tflite").stat().st_size
    assert release["labels"] == ["cat", "dog"]
    check_files(bundle, release)


def test_a_signature_by_another_key_or_over_other_words_is_refused(keys, bundle, tmp_path):
    private, public = keys
    other_private, _ = create_keys(tmp_path / "other")
    trusted = [load_public_key(public)]
    with pytest.raises(EdgeError, match="is not signed by a trusted key .* give the device that key's public half"):
        verify(sign_bundle(bundle, other_private), trusted)
    signed = sign_bundle(bundle, private)
    edited = copy.deepcopy(signed)
    edited["release"]["labels"] = ["dog", "cat"]  # the host, or the path, swaps the names
    with pytest.raises(EdgeError, match="is not signed by a trusted key"):
        verify(edited, trusted)
    edited = copy.deepcopy(signed)
    edited["release"]["files"]["model.tflite"]["sha256"] = "0" * 64
    with pytest.raises(EdgeError, match="is not signed by a trusted key"):
        verify(edited, trusted)
    with pytest.raises(EdgeError, match="has no readable signature"):
        verify({**signed, "signature": "not base64!"}, trusted)


def test_a_file_changed_or_cut_after_signing_is_named(keys, bundle):
    private, public = keys
    release = verify(sign_bundle(bundle, private), [load_public_key(public)])
    model = bundle / "model.tflite"
    data = model.read_bytes()
    model.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(EdgeError, match=r"model.tflite does not match its signed sha256 .* changed after signing"):
        check_files(bundle, release)
    model.write_bytes(data[:100])
    with pytest.raises(EdgeError, match=r"model.tflite is 100 bytes; the signed release says 2056: .* cut short"):
        check_files(bundle, release)
    model.unlink()
    with pytest.raises(EdgeError, match="model.tflite is missing"):
        check_files(bundle, release)


@pytest.mark.parametrize(
    "files",
    [
        {"../model.tflite": {"bytes": 1, "sha256": "0" * 64}},
        {"sub/model.tflite": {"bytes": 1, "sha256": "0" * 64}},
        {"model.tflite": {"bytes": -1, "sha256": "0" * 64}},
        {"model.tflite": {"bytes": True, "sha256": "0" * 64}},
        {"model.tflite": {"bytes": 1, "sha256": "short"}},
        {"model.tflite": {"bytes": 1, "sha256": "../" + "0" * 61}},
        {},
        {f"f{i}": {"bytes": 1, "sha256": "0" * 64} for i in range(65)},
        "not a list",
    ],
)
def test_a_release_whose_files_reach_out_or_do_not_parse_is_refused_before_its_signature(keys, files):
    _, public = keys
    hostile = {"release": {"format_version": 1, "labels": ["a"], "files": files}, "signature": ""}
    with pytest.raises(EdgeError, match="does not list its files as name: {bytes, sha256}"):
        verify(hostile, [load_public_key(public)])


def test_keys_that_are_not_ed25519_pem_are_one_line_errors(keys, tmp_path):
    private, public = keys
    with pytest.raises(EdgeError, match="--key .* is not an unencrypted PEM private key"):
        load_private_key(public)
    with pytest.raises(EdgeError, match="--trust .* is not a PEM public key"):
        load_public_key(private)
    with pytest.raises(EdgeError, match="--trust .*: cannot read it"):
        load_public_key(tmp_path / "absent.pub")
    with pytest.raises(EdgeError, match="is not a release this edge reads .format_version 2"):
        verify({"release": {"format_version": 2}}, [load_public_key(public)])
