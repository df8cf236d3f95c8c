"""An ONNX classifier brought to edge (`edge import`): inspected, scored by ONNX Runtime for the reference, and
converted by onnx2tf, all in the onnx2tf toolchain's own venv (`edge devices toolchain install onnx2tf`): onnx2tf
pins TensorFlow 2.19 and numpy 1.26, which cannot share edge's host environment. convert/onnx_convert.py is the
script that runs there; this side writes its inputs and reads its outputs. The same functions as
edge.converter.torch_model: load, score, to_tflite, versions.
"""

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.devices.toolchains import run_script
from edge.errors import EdgeError, ModelError
from edge.preprocess import resize

TOOLCHAIN = "onnx2tf"
SCRIPT = Path(__file__).with_name("onnx_convert.py")
OPSETS = (7, 22)  # the ONNX opsets onnx2tf 1.29 converts: its README's range (opset 23 files it refuses)
SAMPLE = "calibration_image_sample_data_20x128x128x3_float32.npy"  # what onnx2tf checks its graph on


@dataclass(frozen=True)
class OnnxSource:
    path: Path
    form: str  # "ONNX opset N"
    layout: str  # "NCHW": onnx2tf takes the layout PyTorch exports
    size: tuple[int, int] | None  # the input's height and width where the file fixes them
    facts: dict  # what the toolchain read of it (model.json)


def load(path: Path, input_size: tuple[int, int] | None) -> OnnxSource:
    """The model's facts, read in the toolchain; refuses what onnx2tf or edge cannot take, before any image."""
    with tempfile.TemporaryDirectory(prefix="edge-onnx-") as folder:
        work = Path(folder)
        try:
            run_script(TOOLCHAIN, SCRIPT, ["inspect", str(path.resolve()), str(work)])
        except EdgeError as e:
            if "not installed" in str(e):
                raise
            raise ModelError(f"{path} is not an ONNX model edge can read ({e}): give an .onnx file") from None
        facts = json.loads((work / "model.json").read_text())
    low, high = OPSETS
    if not low <= facts["opset"] <= high or facts["domains"]:
        extra = f" and operations of {', '.join(facts['domains'])}" if facts["domains"] else ""
        raise ModelError(
            f"{path} is ONNX opset {facts['opset']}{extra}; onnx2tf converts opsets {low} to {high} of the standard "
            f"operations: export it again with opset_version={high} (or lower)"
        )
    if len(facts["inputs"]) != 1:
        raise ModelError(
            f"{path} takes {len(facts['inputs'])} inputs: edge imports an image classifier, one input of one image"
        )
    shape = facts["inputs"][0]["shape"]
    fixed = [d if isinstance(d, int) and d > 0 else None for d in shape]
    if len(shape) != 4 or fixed[1] != 3:
        raise ModelError(
            f"{path} takes an input of shape {shape}: edge imports an ONNX image classifier taking [1, 3, height, "
            "width] RGB images (NCHW, as PyTorch exports them)"
        )
    size = (fixed[2], fixed[3]) if fixed[2] and fixed[3] else None
    return OnnxSource(path, f"ONNX opset {facts['opset']}", "NCHW", size, facts)


def score(source: OnnxSource, images: np.ndarray, scale, shift, bgr: bool) -> list[np.ndarray]:
    """ONNX Runtime's outputs for `images` (uint8 RGB) behind the preprocessing: one array per output."""
    with tempfile.TemporaryDirectory(prefix="edge-onnx-") as folder:
        work = _request(Path(folder), images.shape[1:3], scale, shift, bgr, False)
        np.save(work / "images.npy", images)
        try:
            run_script(TOOLCHAIN, SCRIPT, ["score", str(source.path.resolve()), str(work)])
        except EdgeError as e:
            raise ModelError(
                f"ONNX Runtime cannot run {source.path} on {list(images.shape[1:])} images ({e})"
            ) from None
        return [np.load(work / f"output_{i}.npy") for i in range(len(source.facts["outputs"]))]


def to_tflite(source: OnnxSource, size, scale, shift, bgr: bool, softmax: bool, sample: np.ndarray, log) -> bytes:
    """A float TFLite file of the model behind the preprocessing (and a softmax), by onnx2tf and TensorFlow's
    converter; `sample`: images onnx2tf checks its graph on (it would download its own)."""
    with tempfile.TemporaryDirectory(prefix="edge-onnx-") as folder:
        work = _request(Path(folder), size, scale, shift, bgr, softmax)
        (work / "model.json").write_text(json.dumps(source.facts))
        picked = np.stack([resize(image, 128, 128) for image in sample[:20]]).astype(np.float32) / 255
        np.save(work / SAMPLE, picked)
        try:
            run_script(TOOLCHAIN, SCRIPT, ["convert", str(source.path.resolve()), str(work)], log)
        except EdgeError as e:
            raise EdgeError(f"onnx2tf cannot convert {source.path} ({e})") from None
        return (work / "model.tflite").read_bytes()


def versions(source: OnnxSource) -> dict:
    return source.facts["versions"]


def _request(work: Path, size, scale, shift, bgr: bool, softmax: bool) -> Path:
    request = {
        "size": [int(s) for s in size],
        "scale": [float(v) for v in scale],
        "shift": [float(v) for v in shift],
        "bgr": bgr,
        "softmax": softmax,
    }
    (work / "request.json").write_text(json.dumps(request))
    return work
