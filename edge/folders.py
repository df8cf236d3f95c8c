"""Image folders: one sub-folder of images per class, on host and device alike.

Used by `edge convert` to read training data and by `edge eval` / `edge bench` to read test data.
"""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.errors import OptionError, SourceError, close_matches
from edge.frame_record import UNLABELLED
from edge.images import is_image_file

DATA_REQUIRED = "--data is required: a folder with one sub-folder of images per class"


@dataclass
class ImageFolder:
    root: str  # the folder, or the folders joined with " + "
    classes: list[str]
    paths: list[Path]
    labels: np.ndarray  # index into classes, one per path
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, why)
    unlabelled: list[Path] = field(default_factory=list)  # the images under each root's UNLABELLED folder


def scan(roots, classes: list[str] | None = None) -> ImageFolder:
    """List the images under root/<class>/, for one root or several (the data set a model was trained on and
    the frames labelled in the field, say): classes of the same name are one class.

    Without `classes`, the sorted sub-folder names are the classes. With `classes` (a model's labels),
    every sub-folder must be one of them and labels index into them; classes may lack a folder. A sub-folder
    named UNLABELLED is no class: its images (at any depth) are listed apart.
    """
    roots = [check_data(root) for root in (roots if isinstance(roots, (list, tuple)) else [roots])]
    found, unlabelled_folders = set(), []
    for root in roots:
        folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        no_class = [p for p in folders if p.name.casefold() == UNLABELLED]  # one folder on macOS and Windows
        unlabelled_folders += no_class
        names = {p.name for p in folders} - {p.name for p in no_class}
        if not names and not no_class:  # images of no class go beside another root's classes
            raise SourceError(f"{root} has no class sub-folders: put each class's images in {root}/<class name>/")
        if classes is not None:
            unknown = sorted(names - set(classes))
            if unknown:
                hints = [
                    f"{name} (did you mean {', '.join(close_matches(name, classes))}?)"
                    if close_matches(name, classes)
                    else name
                    for name in unknown
                ]
                raise SourceError(
                    f"{root} has class folders the model does not know: {'; '.join(hints)}. "
                    f"Name the folders after its classes: {_preview(classes)}"
                )
        found |= names
    if classes is None:
        if not found:
            raise SourceError(
                f"{' + '.join(map(str, roots))} has no class sub-folders, only {UNLABELLED}/: put each class's "
                "images in <class name>/ beside it, or give the labelled images with another --data"
            )
        if len(found) == 1:
            raise SourceError(
                f"{' + '.join(map(str, roots))} has one class ({found.pop()}): a classifier needs at "
                "least two class folders"
            )
        classes = sorted(found)
    paths, labels, skipped, seen = [], [], [], set()
    for index, name in enumerate(classes):
        if name in seen:  # a name twice in a labels file: its images count once
            continue
        seen.add(name)
        for folder in (root / name for root in roots if (root / name).is_dir()):
            for path in sorted(p for p in folder.iterdir() if not p.name.startswith(".")):
                if path.is_file() and is_image_file(path):
                    paths.append(path)
                    labels.append(index)
                elif path.is_file():
                    skipped.append((str(path), "not an image file"))
    unlabelled = []
    for folder in unlabelled_folders:
        for path in sorted(folder.rglob("*")):
            if not path.is_file() or any(part.startswith(".") for part in path.relative_to(folder).parts):
                continue
            if is_image_file(path):
                unlabelled.append(path)
            else:
                skipped.append((str(path), "not an image file"))
    return ImageFolder(
        " + ".join(map(str, roots)), list(classes), paths, np.array(labels, dtype=np.int64), skipped, unlabelled
    )


def check_data(root) -> Path:
    """An image-folder root that exists; called before any long work."""
    if root is None:
        raise OptionError(DATA_REQUIRED)
    root = Path(root)
    if root.exists() and not root.is_dir():  # an image, or an archive not yet unpacked
        raise SourceError(
            f"{root} is a file, not a data folder: give a folder with one sub-folder of images per class "
            "(an archive: unpack it first)"
        )
    if not root.is_dir():
        raise SourceError(f"data folder {root} does not exist: give a folder with one sub-folder of images per class")
    return root


def _preview(names: list[str], limit: int = 12) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")
