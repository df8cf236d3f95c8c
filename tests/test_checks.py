"""A bundle's check images (edge.checks): convert writes one validation image a class with its scores, and a
device refuses a model that scores them otherwise."""

import json
import shutil

import cv2
import pytest

from edge.bundle import read_bundle
from edge.checks import run_checks
from edge.errors import ModelError
from edge.model import load_model


@pytest.fixture
def copy(e2e, tmp_path):
    shutil.copytree(e2e.bundle, tmp_path / "b")
    return tmp_path / "b"


def test_convert_writes_one_check_image_a_class_that_the_model_scores_as_it_did(e2e):
    bundle = read_bundle(e2e.bundle)
    checks = bundle.manifest["checks"]
    assert sorted(c["label"] for c in checks) == [0, 1, 2, 3]
    assert [c["file"] for c in checks] == bundle.files[-4:]
    image = cv2.imread(str(bundle.path / checks[0]["file"]))
    assert image.shape == (48, 48, 3) and image.std() > 10  # a scan, not a blank
    run_checks(load_model(bundle.path, threads=1), bundle)


def test_a_model_that_scores_its_checks_otherwise_is_refused(copy):
    manifest = json.loads((copy / "edge.json").read_text())
    first, second = manifest["checks"][:2]
    (copy / first["file"]).write_bytes((copy / second["file"]).read_bytes())  # another class's scan
    bundle = read_bundle(copy)
    with pytest.raises(
        ModelError,
        match=r"check-0.png: the model scores it \S+ [01]\.\d{3} here, \S+ [01]\.\d{3} "
        "when it was made: it is not run on this device",
    ):
        run_checks(load_model(copy, threads=1), bundle)


def test_a_check_image_of_another_size_is_refused(copy):
    manifest = json.loads((copy / "edge.json").read_text())
    image = cv2.imread(str(copy / manifest["checks"][0]["file"]))
    cv2.imwrite(str(copy / manifest["checks"][0]["file"]), cv2.resize(image, (32, 32)))
    with pytest.raises(ModelError, match="check-0.png is 32x32, not the model's input size 48x48: re-export"):
        run_checks(load_model(copy, threads=1), read_bundle(copy))
