"""Image folders (one sub-folder per class) -> uint8 arrays at the model's input size, with a
stratified, seeded validation split. Bad files are skipped and reported; bad folders are errors."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.errors import EdgeError
from edge.folders import scan
from edge.images import BadImage, read_rgb
from edge.preprocess import resize
from edge.progress import Log

MIN_IMAGES_PER_CLASS = 2  # one to train on, one to validate with


@dataclass
class Split:
    """Loaded images ready for training: uint8 RGB, N x size x size x 3."""

    classes: list[str]
    train_x: np.ndarray
    train_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray
    skipped: list[tuple[str, str]]
    train_paths: list[Path]  # the files of train_x and val_x, row for row
    val_paths: list[Path]
    unlabelled: list[Path]  # the training folders' images of no class (edge.folders.UNLABELLED): a teacher's to label


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val): `fraction` of every class (at least one image) goes to validation."""
    rng = np.random.default_rng(seed)
    train: list[int] = []
    val: list[int] = []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_val = min(max(1, round(len(idx) * fraction)), len(idx) - 1)
        val.extend(idx[:n_val])
        train.extend(idx[n_val:])
    return np.sort(np.array(train, dtype=np.int64)), np.sort(np.array(val, dtype=np.int64))


def load_images(
    paths, size: int, progress=None, width: int | None = None
) -> tuple[np.ndarray, np.ndarray, list[tuple[str, str]]]:
    """Decode and resize to size x size (size x width); returns (images, indices of the paths that loaded,
    skipped)."""
    width = width or size
    images, kept, skipped = [], [], []
    for i, path in enumerate(paths):
        try:
            images.append(resize(read_rgb(path), size, width))
            kept.append(i)
        except BadImage as e:
            skipped.append((str(path), str(e)))
        if progress:
            progress(1)
    array = np.stack(images) if images else np.zeros((0, size, width, 3), np.uint8)
    return array, np.array(kept, dtype=np.int64), skipped


def load_split(data, size: int, val=None, val_split: float = 0.2, seed: int = 0, log: Log | None = None) -> Split:
    """Scan, split and load the training (and validation) folders, with a progress bar on `log`."""
    train_folder = scan(data)
    if val is not None:
        val_folder = scan(val, train_folder.classes)
        parts = [(train_folder.paths, train_folder.labels), (val_folder.paths, val_folder.labels)]
        skipped = train_folder.skipped + val_folder.skipped
        if val_folder.unlabelled and log:
            log(
                f"{len(val_folder.unlabelled)} image(s) in the --val folder's _unlabelled/ left out: a teacher labels "
                "the training folders' only"
            )
    else:
        _check_counts(train_folder.classes, train_folder.labels, f"{train_folder.root}")
        train_idx, val_idx = stratified_split(train_folder.labels, val_split, seed)
        every = np.array(train_folder.paths, dtype=object)
        parts = [
            (list(every[train_idx]), train_folder.labels[train_idx]),
            (list(every[val_idx]), train_folder.labels[val_idx]),
        ]
        skipped = list(train_folder.skipped)
    bar = (log or Log(enabled=False)).bar(sum(len(paths) for paths, _ in parts), "reading images")
    loaded = []
    for paths, labels in parts:
        images, kept, bad = load_images(paths, size, bar.update)
        skipped += bad
        loaded.append((images, labels[kept], [paths[i] for i in kept]))
    bar.finish()
    (train_x, train_y, train_paths), (val_x, val_y, val_paths) = loaded
    note = f" ({len(skipped)} unreadable files skipped, e.g. {skipped[0][0]})" if skipped else ""
    _check_counts(train_folder.classes, train_y, f"the training images{note}", minimum=1)
    _check_counts(train_folder.classes, val_y, f"the validation images{note}", minimum=1)
    return Split(
        train_folder.classes, train_x, train_y, val_x, val_y, skipped, train_paths, val_paths, train_folder.unlabelled
    )


def _check_counts(classes, labels, where: str, minimum: int = MIN_IMAGES_PER_CLASS) -> None:
    counts = np.bincount(labels, minlength=len(classes))
    few = [f"{classes[c]} ({counts[c]})" for c in range(len(classes)) if counts[c] < minimum]
    if few:
        raise EdgeError(
            f"too few readable images in {where} for: {', '.join(few)}; "
            f"each class needs at least {minimum}: add images or remove the class folder"
        )
