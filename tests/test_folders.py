import shutil

import numpy as np
import pytest

from edge.errors import EdgeError
from edge.folders import scan


def test_scan_lists_classes_in_sorted_order(folder):
    found = scan(folder)
    assert found.classes == ["0", "1", "7"]
    assert len(found.paths) == 48 and np.array_equal(np.bincount(found.labels), [16, 16, 16])


def test_folders_map_to_a_models_labels_by_name(folder):
    found = scan(folder, ["7", "x", "1", "0"])  # output order, with a class that has no folder
    assert found.classes == ["7", "x", "1", "0"]
    assert np.array_equal(np.bincount(found.labels, minlength=4), [16, 0, 16, 16])
    assert all(p.parent.name == found.classes[c] for p, c in zip(found.paths, found.labels, strict=True))


def test_a_label_listed_twice_counts_its_images_once(folder):
    found = scan(folder, ["0", "1", "7", "1"])  # ImageNet's labels name "crane" twice
    assert len(found.paths) == 48 and np.array_equal(np.bincount(found.labels, minlength=4), [16, 16, 16, 0])


def test_unknown_folder_names_the_closest_label(folder):
    shutil.move(folder / "7", folder / "seven")
    with pytest.raises(EdgeError, match=r"does not know: seven \(did you mean Seven\?\)"):
        scan(folder, ["0", "1", "Seven"])


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda root: None, "does not exist"),
        (
            lambda root: root.write_bytes(b"\x89PNG\r\n\x1a\n"),
            "is a file, not a data folder: give a folder with one sub-",
        ),
        (lambda root: root.mkdir(), "no class sub-folders"),
        (lambda root: (root / "only").mkdir(parents=True), "one class"),
    ],
)
def test_bad_folders(tmp_path, make, message):
    make(tmp_path / "d")
    with pytest.raises(EdgeError, match=message):
        scan(tmp_path / "d")


def test_several_roots_merge_their_classes_by_name(folder, tmp_path):
    (tmp_path / "field" / "7").mkdir(parents=True)
    (tmp_path / "field" / "new").mkdir()
    for path in sorted((folder / "7").iterdir())[:3]:
        shutil.copy(path, tmp_path / "field" / "7" / f"field-{path.name}")
    shutil.copy(next((folder / "1").iterdir()), tmp_path / "field" / "new" / "a.png")
    found = scan([folder, tmp_path / "field"])
    assert found.classes == ["0", "1", "7", "new"] and found.root == f"{folder} + {tmp_path / 'field'}"
    assert np.array_equal(np.bincount(found.labels), [16, 16, 19, 1])
    with pytest.raises(EdgeError, match=f"^{tmp_path / 'field'} has class folders the model does not know: new"):
        scan([folder, tmp_path / "field"], ["0", "1", "7"])


def test_an_unlabelled_folder_is_no_class_and_its_images_are_listed_apart(folder):
    frames = folder / "_unlabelled" / "camera-2"
    frames.mkdir(parents=True)
    for i, path in enumerate(sorted((folder / "0").iterdir())[:3]):
        shutil.copy(path, frames / f"frame-{i}.png")
    (frames / ".frame-9.png").write_bytes(b"")  # hidden: a copy tool's leftover
    (frames / ".thumbnails").mkdir()
    shutil.copy(frames / "frame-0.png", frames / ".thumbnails" / "frame-0.png")
    (frames / "notes.txt").write_text("not an image")
    found = scan(folder)
    assert found.classes == ["0", "1", "7"] and len(found.paths) == 48
    assert [p.name for p in found.unlabelled] == ["frame-0.png", "frame-1.png", "frame-2.png"]
    assert found.skipped == [(str(frames / "notes.txt"), "not an image file")]
    assert scan(folder, ["7", "1", "0"]).classes == ["7", "1", "0"]  # a model's labels need no such class


def test_a_folder_of_unlabelled_images_alone_goes_beside_labelled_ones(folder, tmp_path):
    field = tmp_path / "field"
    (field / "_unlabelled").mkdir(parents=True)
    shutil.copy(next((folder / "1").iterdir()), field / "_unlabelled" / "frame.png")
    found = scan([folder, field])
    assert found.classes == ["0", "1", "7"] and [p.name for p in found.unlabelled] == ["frame.png"]
    with pytest.raises(EdgeError, match="has no class sub-folders, only _unlabelled/: put each class's images"):
        scan(field)
