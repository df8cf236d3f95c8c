"""The embedded demo data set: scikit-learn's handwritten digits (real scans, shipped inside the
package, nothing downloaded), written as one folder of PNGs per class."""
from pathlib import Path

import cv2
import numpy as np

from edge.errors import EdgeError


def write_digits(out, digits=(0, 1, 2, 3), per_class: int | None = 150, size: int = 32, skip: int = 0) -> Path:
    """Write `per_class` images of each digit (all there are with None), after the first `skip`, as
    size x size grayscale PNGs in out/<digit>/. scikit-learn has 174-183 scans of each digit."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise EdgeError("the demo data set comes with scikit-learn: pip install 'edge[host]'") from None
    data = load_digits()
    out = Path(out)
    for digit in digits:
        folder = out / str(digit)
        folder.mkdir(parents=True, exist_ok=True)
        scans = data.images[data.target == digit][skip:]
        for i, image in enumerate(scans[:per_class], start=skip):
            pixels = (image * (255.0 / 16.0)).astype(np.uint8)  # 17 grey levels in the original scans
            cv2.imwrite(str(folder / f"{digit}_{i:03d}.png"), cv2.resize(pixels, (size, size), interpolation=cv2.INTER_CUBIC))
    return out
