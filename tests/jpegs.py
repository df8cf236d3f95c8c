"""Real JPEGs for the host's frame check (tests/test_frame_check.py, benchmarks/frame_check_bench.py):
scikit-learn's scanned digits, encoded by OpenCV, and a hostile edit of them."""

import re
from itertools import pairwise

import cv2
import numpy as np

from edge.collect import QUALITY


def picture(width: int, height: int) -> np.ndarray:
    """A BGR picture of 64 digit scans, 8 by 8, enlarged to width x height: smooth, so a progressive JPEG of
    it has scans of a few dozen bytes."""
    from sklearn.datasets import load_digits

    scans = (load_digits().images[:64] * (255 / 16)).astype(np.uint8)
    grid = np.vstack([np.hstack(scans[row * 8 : row * 8 + 8]) for row in range(8)])
    grey = cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
    return cv2.merge([grey, 255 - grey, grey // 2])


def encoded(width: int, height: int, progressive: bool = False) -> bytes:
    """A JPEG of `picture`, at the quality `edge run --collect` encodes frames at."""
    return cv2.imencode(
        ".jpg",
        picture(width, height),
        [cv2.IMWRITE_JPEG_PROGRESSIVE, int(progressive), cv2.IMWRITE_JPEG_QUALITY, QUALITY],
    )[1].tobytes()


def repeated_scan(jpeg: bytes, times: int) -> bytes:
    """A progressive JPEG with its shortest scan `times` more times: the decoder makes a pass over the whole
    image for each. (A marker's two bytes never occur inside coded data, and OpenCV's tables hold no FFDA.)"""
    starts = [m.start() for m in re.finditer(rb"\xff\xda", jpeg)] + [len(jpeg) - 2]
    begin, end = min(pairwise(starts), key=lambda scan: scan[1] - scan[0])
    return jpeg[:end] + jpeg[begin:end] * times + jpeg[end:]
