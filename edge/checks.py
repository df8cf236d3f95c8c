"""A bundle's own check images: a few validation images (one a class, up to MAX_CHECKS) written into the bundle
as PNG at the model's input size, with the scores the exported model gave them. A device that fetched a new
version classifies them in a fresh interpreter before the version meets a frame (edge.follow): a model that
loads but computes something else on this device's runtime (a delegate, a damaged file that still parses)
is caught there. PNG is lossless, so the device classifies the very pixels convert did."""

import hashlib

import cv2
import numpy as np

from edge.bundle import MAX_CHECKS
from edge.errors import ModelError
from edge.eval.evaluate import classify_all
from edge.images import read_rgb

TOLERANCE = 0.05  # of a score: int8 kernels differ by a quantization step or two between runtimes


def make_checks(images: np.ndarray, labels: np.ndarray, scores: np.ndarray) -> tuple[dict, list]:
    """The files ({name: PNG bytes}) and the manifest's "checks" entries for the first validation image of each
    class (RGB uint8 at the input size), with the exported model's `scores` for them."""
    files, entries = {}, []
    for n, index in enumerate(sorted(int(np.flatnonzero(labels == c)[0]) for c in np.unique(labels))[:MAX_CHECKS]):
        _, png = cv2.imencode(".png", cv2.cvtColor(images[index], cv2.COLOR_RGB2BGR))
        name, data = f"check-{n}.png", png.tobytes()
        files[name] = data
        entries.append(
            {
                "file": name,
                "sha256": hashlib.sha256(data).hexdigest(),
                "label": int(labels[index]),
                "scores": [round(float(s), 6) for s in scores[index]],
            }
        )
    return files, entries


def run_checks(model, bundle) -> None:
    """Classify the bundle's check images with `model` (loaded from it); ModelError naming the first that
    scores otherwise than convert measured."""
    checks = bundle.manifest.get("checks") or []
    shape = tuple(bundle.manifest["input"]["shape"][1:])
    images = [(read_rgb(bundle.path / check["file"]), check) for check in checks]
    for image, check in images:
        if image.shape != shape:
            raise ModelError(
                f"{bundle.path / check['file']} is {image.shape[1]}x{image.shape[0]}, not the model's "
                f"input size {shape[1]}x{shape[0]}: re-export the bundle with 'edge convert'"
            )
    for scores, check in classify_all(model.interpreter, images, model.input_range):
        want = np.asarray(check["scores"], dtype=np.float64)
        if (
            scores.shape != want.shape
            or int(np.argmax(scores)) != int(np.argmax(want))
            or float(np.max(np.abs(scores - want))) > TOLERANCE
        ):
            raise ModelError(
                f"{bundle.path / check['file']}: the model scores it {_top(scores, model.labels)} here, "
                f"{_top(want, model.labels)} when it was made: it is not run on this device"
            )


def _top(scores, labels) -> str:
    best = int(np.argmax(scores))
    return f"{labels[best] if best < len(labels) else best} {float(scores[best]):.3f}"
