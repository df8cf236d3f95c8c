import json

import pytest

from edge.bundle import FORMAT_VERSION, MANIFEST, read_bundle, write_bundle
from edge.errors import EdgeError

MANIFEST_IN = {"labels": ["cat", "dog"], "backbone": {"name": "mobilenetv2"}}


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
