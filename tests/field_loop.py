"""The loop from the field, built here for a test and a benchmark: a model trained on scanned digits; a camera
that then sees other scans of the same digits under a change (half the light, say); the frames the device
collects, labelled from the scenario's truth through the host's API as a person would on the dashboard; the
labelled frames exported and the model trained again on both folders; and a third set of scans, under the
same change, that neither training saw."""

import random
import shutil
from pathlib import Path

import cv2
import numpy as np

import edge
from edge.converter.demo import write_digits
from edge.results import ConvertResult
from tests.bundles import E2E_OPTIONS

CHANGES = {
    "half the light": lambda x: (x * 0.5).astype(np.uint8),
    "rotated 25 degrees": lambda x: cv2.warpAffine(
        x, cv2.getRotationMatrix2D((24, 24), 25, 1.0), (48, 48), borderMode=cv2.BORDER_REPLICATE
    ),
}
TRAIN, FIELD = 100, 40  # scans a class: the first 100 train, the next 40 pass the camera, the rest test


def changed_copy(source: Path, out: Path, change) -> Path:
    """Every image under source/<class>/ under `change`, as out/<class>/."""
    for path in sorted(source.rglob("*.png")):
        (out / path.parent.name).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(out / path.parent.name / path.name), change(cv2.imread(str(path))))
    return out


def scenario(work: Path, change: str, seed: int = 0) -> dict:
    """The folders: train/ (as the model was trained), camera/ (what the camera sees after the change: frames
    in a seeded random order, named by position) with `truth` (the label of each), and the test scans as they
    are (test/) and under the change (drifted/)."""
    work.mkdir(parents=True, exist_ok=True)
    train = write_digits(work / "train", per_class=TRAIN, size=48)
    field = changed_copy(
        write_digits(work / "field", per_class=FIELD, size=48, skip=TRAIN), work / "field-changed", CHANGES[change]
    )
    test = write_digits(work / "test", per_class=None, size=48, skip=TRAIN + FIELD)
    drifted = changed_copy(test, work / "drifted", CHANGES[change])
    frames = sorted(field.rglob("*.png"))
    random.Random(seed).shuffle(frames)
    camera = work / "camera"
    camera.mkdir()
    for i, path in enumerate(frames):
        shutil.copy(path, camera / f"{i:04d}.png")
    return {
        "train": train,
        "camera": camera,
        "truth": [p.parent.name for p in frames],
        "test": test,
        "drifted": drifted,
    }


def convert(data, out: Path, seed: int = 0) -> ConvertResult:
    return edge.convert("mobilenetv2", data, out, seed=seed, **E2E_OPTIONS)


def label_from_truth(server, device: str, truth: list[str], reader=None) -> int:
    """Label every new frame of `device` with the scenario's truth of its frame, through the host's API;
    returns how many."""
    status, listing = server.get(f"/api/v1/devices/{device}/frames?state=new&limit=1000", reader)
    assert status == 200, listing
    for frame in listing["frames"]:
        status, answer = server.request(
            "POST", f"/api/v1/frames/{frame['id']}/label", {"label": truth[frame["frame"]]}, reader
        )
        assert status == 200, answer
    return len(listing["frames"])
