import json
import shutil

import pytest

from edge.bundle import FORMAT_VERSION, MANIFEST, read_bundle, write_bundle
from edge.errors import EdgeError
from edge.model import load_model
from tests.bundles import MANIFEST_IN
from tests.cli import edge_cli


def test_round_trip(tmp_path):
    written = write_bundle(tmp_path / "b", b"model bytes", MANIFEST_IN)
    bundle = read_bundle(tmp_path / "b")
    assert bundle.manifest == written.manifest
    assert bundle.manifest["format_version"] == FORMAT_VERSION
    assert bundle.labels == ["cat", "dog"]
    assert (tmp_path / "b" / "labels.txt").read_text() == "cat\ndog\n"
    assert bundle.model_path.read_bytes() == b"model bytes"
    assert bundle.manifest["model"]["bytes"] == 11
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]  # no temporary folders left


def test_replaces_an_earlier_bundle(tmp_path):
    write_bundle(tmp_path / "b", b"old", MANIFEST_IN)
    write_bundle(tmp_path / "b", b"new", MANIFEST_IN)
    assert read_bundle(tmp_path / "b").model_path.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


def test_failed_write_keeps_the_earlier_bundle_and_leaves_nothing(tmp_path):
    write_bundle(tmp_path / "b", b"old", MANIFEST_IN)
    with pytest.raises(TypeError):
        write_bundle(tmp_path / "b", b"new", {"labels": ["a"], "bad": object()})  # not JSON-serializable
    assert read_bundle(tmp_path / "b").model_path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


def test_refuses_to_write_over_other_files(tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "keep.jpg").write_bytes(b"precious")
    with pytest.raises(EdgeError, match="not a bundle"):
        write_bundle(tmp_path / "photos", b"m", MANIFEST_IN)
    assert (tmp_path / "photos" / "keep.jpg").read_bytes() == b"precious"


def test_refuses_a_changed_model(tmp_path):
    write_bundle(tmp_path / "b", b"model", MANIFEST_IN)
    (tmp_path / "b" / "model.tflite").write_bytes(b"tampered")
    with pytest.raises(EdgeError, match="sha256"):
        read_bundle(tmp_path / "b")


def test_refuses_other_format_versions_and_non_bundles(tmp_path):
    write_bundle(tmp_path / "b", b"model", MANIFEST_IN)
    manifest = json.loads((tmp_path / "b" / MANIFEST).read_text())
    (tmp_path / "b" / MANIFEST).write_text(json.dumps({**manifest, "format_version": 99}))
    with pytest.raises(EdgeError, match="format_version"):
        read_bundle(tmp_path / "b")
    (tmp_path / "b" / MANIFEST).write_text("{not json")
    with pytest.raises(EdgeError, match="not valid JSON"):
        read_bundle(tmp_path / "b")
    with pytest.raises(EdgeError, match="not a bundle"):
        read_bundle(tmp_path)


def test_keeps_the_model_compiled_for_the_edge_tpu_and_checks_it_too(tmp_path):
    written = write_bundle(tmp_path / "b", b"model", {**MANIFEST_IN, "edgetpu": {"compiled": True}}, edgetpu=b"tpu")
    bundle = read_bundle(tmp_path / "b")
    assert bundle.edgetpu_path.read_bytes() == b"tpu" and bundle.model_path.read_bytes() == b"model"
    assert written.manifest["edgetpu"]["compiled"] and written.manifest["edgetpu"]["model"]["bytes"] == 3
    (tmp_path / "b" / "model_edgetpu.tflite").write_bytes(b"tampered")
    with pytest.raises(EdgeError, match="model_edgetpu.tflite does not match the sha256"):
        read_bundle(tmp_path / "b")
    (tmp_path / "b" / "model_edgetpu.tflite").unlink()
    with pytest.raises(EdgeError, match="model_edgetpu.tflite is missing"):
        read_bundle(tmp_path / "b")
    assert read_bundle(write_bundle(tmp_path / "plain", b"model", MANIFEST_IN).path).edgetpu_path is None


@pytest.mark.parametrize(
    "labels,what",
    [
        ("1\n0\n2\n3\n", "line 1 of labels.txt is '1', edge.json has '0' there; the same names in another order"),
        ("0\n1\ntwo\n3\n", "line 3 of labels.txt is 'two', edge.json has '2' there"),
        ("0\n1\n2\n", "labels.txt has 3 names, edge.json 4"),
    ],
)
def test_refuses_a_bundle_whose_labels_disagree(e2e, tmp_path, labels, what):
    bundle = shutil.copytree(e2e.bundle, tmp_path / "b")
    (bundle / "labels.txt").write_text(labels)
    with pytest.raises(EdgeError) as e:
        load_model(bundle)
    assert str(e.value).startswith(f"{bundle / 'labels.txt'} and {bundle / MANIFEST} disagree on the labels ({what}): ")
    (bundle / "labels.txt").write_text("0\r\n1\r\n2\r\n3\r\n\r\n")  # Windows line ends and a blank line: the same
    assert load_model(bundle).labels == ["0", "1", "2", "3"]


def test_what_is_given_as_the_model_is_named(e2e, tmp_path):
    """Each wrong thing given where a bundle or .tflite file goes is named for what it is."""
    (tmp_path / "empty").mkdir()
    labels = tmp_path / "labels.txt"
    labels.write_text("0\n1\n2\n3\n")
    bundle = shutil.copytree(e2e.bundle, tmp_path / "bundles" / "digits")
    (tmp_path / "models").mkdir()
    shutil.copy(bundle / "model.tflite", tmp_path / "models" / "digits.tflite")
    (tmp_path / "zero.tflite").write_bytes(b"")
    cases = [
        (
            (tmp_path / "empty", labels),
            f"{tmp_path / 'empty'} holds no model (no edge.json, no .tflite file): give "
            "a bundle folder written by 'edge convert', or a .tflite file",
        ),
        (
            (tmp_path / "models",),
            f"{tmp_path / 'models'} is not a bundle (no edge.json): give one of its .tflite "
            f"files, e.g. {tmp_path / 'models' / 'digits.tflite'}, with --labels",
        ),
        (
            (tmp_path / "bundles",),
            f"{tmp_path / 'bundles'} is not a bundle (no edge.json) but holds 1 bundle "
            f"folder(s): give one of them, e.g. {bundle}",
        ),
        ((labels, labels), f"{labels} is not a usable TFLite model (it lacks the TFL3 identifier: not a .tflite file)"),
        ((tmp_path / "zero.tflite", labels), f"{tmp_path / 'zero.tflite'} is not a usable TFLite model (it is empty"),
        ((bundle / MANIFEST,), f"{bundle / MANIFEST} is a bundle's manifest: give the bundle folder, {bundle}"),
        ((bundle, None, "0,1"), "--input-range is for bare .tflite files: leave it out"),
    ]
    for args, message in cases:
        with pytest.raises(EdgeError) as e:
            load_model(*args)
        assert message in str(e.value), (args, str(e.value))
    r = edge_cli("run", tmp_path / "empty", "--labels", labels, "--source", tmp_path)
    assert r.returncode == 2 and r.stderr == f"error: {cases[0][1]}\n", r.stderr
