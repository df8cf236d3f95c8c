"""Reading image files into RGB uint8 arrays, whatever their depth and channels."""

from pathlib import Path

import cv2
import numpy as np

from edge.errors import SourceError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm"})


class BadImage(SourceError):
    """An image file that cannot be decoded."""


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def read_rgb(path) -> np.ndarray:
    """Decode an image file to an HxWx3 RGB uint8 array.

    Grayscale is expanded to three channels, alpha is dropped, 16-bit is scaled to 8-bit, and EXIF
    orientation is applied (IMREAD_COLOR does that; IMREAD_UNCHANGED would not).
    """
    try:
        data = np.fromfile(path, dtype=np.uint8)  # np.fromfile + imdecode also handles non-ASCII paths
    except OSError as e:
        raise BadImage(f"cannot read {path}: {e.strerror}") from None
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH) if data.size else None
    if bgr is None:
        raise BadImage(f"{path} is not a readable image (corrupt, empty or an unsupported format)")
    if bgr.dtype == np.uint16:
        bgr = np.right_shift(bgr, 8).astype(np.uint8)
    elif bgr.dtype != np.uint8:  # float TIFF/EXR: assume 0..1
        bgr = (np.clip(bgr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
