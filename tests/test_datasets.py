import shutil

import numpy as np
import pytest

from edge.converter.datasets import load_split, stratified_split
from edge.errors import EdgeError


def test_stratified_split_is_deterministic_and_keeps_proportions():
    labels = np.repeat([0, 1, 2], [50, 30, 20])
    train, val = stratified_split(labels, 0.2, seed=3)
    again_train, again_val = stratified_split(labels, 0.2, seed=3)
    assert np.array_equal(val, again_val) and np.array_equal(train, again_train)
    assert np.array_equal(np.bincount(labels[val]), [10, 6, 4])
    assert not set(train) & set(val) and len(train) + len(val) == 100
    assert not np.array_equal(stratified_split(labels, 0.2, seed=4)[1], val)


def test_load_split_resizes_and_skips_bad_files(folder):
    (folder / "0" / "broken.png").write_bytes(b"garbage")
    (folder / "1" / "notes.txt").write_text("hello")
    (folder / "1" / ".DS_Store").write_bytes(b"\0")
    split = load_split(folder, 24, val_split=0.25, seed=0)
    assert split.train_x.shape[1:] == (24, 24, 3) and split.train_x.dtype == np.uint8
    assert len(split.train_y) + len(split.val_y) == 48
    assert sorted(p.rsplit("/", 1)[-1] for p, _ in split.skipped) == ["broken.png", "notes.txt"]


def test_val_folder_with_unknown_class_is_refused(folder, tmp_path):
    val = tmp_path / "val"
    shutil.copytree(folder / "0", val / "0")
    shutil.copytree(folder / "1", val / "cat")
    with pytest.raises(EdgeError, match="cat"):
        load_split(folder, 24, val=val)


def test_class_with_too_few_images(folder):
    for extra in sorted((folder / "7").iterdir())[1:]:
        extra.unlink()
    with pytest.raises(EdgeError, match=r"7 \(1\)"):
        load_split(folder, 24)


def test_class_of_only_corrupt_files(folder):
    for path in (folder / "7").iterdir():
        path.write_bytes(b"corrupt")
    with pytest.raises(EdgeError, match="too few readable images.*7"):
        load_split(folder, 24)


def test_the_split_keeps_each_images_file_and_the_unlabelled_files(folder):
    (folder / "_unlabelled").mkdir()
    shutil.copy(next((folder / "1").iterdir()), folder / "_unlabelled" / "frame.png")
    (folder / "7" / "broken.png").write_bytes(b"garbage")
    split = load_split(folder, 24, val_split=0.25, seed=0)
    assert len(split.train_paths) == len(split.train_y) and len(split.val_paths) == len(split.val_y)
    assert all(p.parent.name == split.classes[y] for p, y in zip(split.train_paths, split.train_y, strict=True))
    assert all(p.name != "broken.png" for p in split.train_paths + split.val_paths)
    assert [p.name for p in split.unlabelled] == ["frame.png"]
