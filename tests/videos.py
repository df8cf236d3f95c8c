"""Videos of real scans, written the way a test needs them (FFV1: lossless, so every frame is known)."""

from pathlib import Path

import cv2
import numpy as np


def read_bgr(path) -> np.ndarray:
    """An image of the test's own, as OpenCV reads it (BGR); one that does not read is the test's mistake."""
    image = cv2.imread(str(path))
    if image is None:
        raise FileNotFoundError(f"{path} cannot be read as an image")
    return image


def scan_video(path: Path, folder: Path, frames: int, fourcc: str = "FFV1", fps: float = 30.0) -> Path:
    """`frames` frames of the scans in `folder` (48x48), in name order, again and again."""
    scans = [read_bgr(p) for p in sorted(Path(folder).iterdir())]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*fourcc), fps, (48, 48))
    for i in range(frames):
        writer.write(scans[i % len(scans)])
    writer.release()
    return path
