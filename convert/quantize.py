"""The quantization table and the TFLite conversion it drives."""
import warnings
from dataclasses import dataclass

import numpy as np

from edge.quiet import quiet_stderr

IO_TYPES = ("uint8", "int8", "float32")


@dataclass(frozen=True)
class Quantization:
    name: str
    description: str
    io_types: tuple[str, ...]  # first is the default
    calibrate: bool  # needs representative images


QUANTIZATIONS = {q.name: q for q in (
    Quantization("float32", "no quantization", ("float32",), False),
    Quantization("float16", "float16 weights, float32 compute", ("float32",), False),
    Quantization("dynamic", "int8 weights, float activations (often slower than float32 on CPU)", ("float32",), False),
    Quantization("int8", "full integer: int8 weights and activations (fastest on CPU; needed by the Edge TPU)",
                 IO_TYPES, True),
)}


def calibration_images(images: np.ndarray, count: int, seed: int) -> np.ndarray:
    """A seeded sample of real training images, as float pixels 0..255: exactly what the model's
    input gets at inference (the preprocessing is inside the graph, so calibration cannot disagree).

    One pixel of the first image is set to 0 and one to 255, so the input's calibrated range is the
    full pixel range: a uint8 input then has scale 1, zero point 0, and takes raw pixels.
    """
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(images), size=min(count, len(images)), replace=False)
    sample = images[pick].astype(np.float32)
    sample[0, 0, 0, :] = 0.0
    sample[0, 0, 1, :] = 255.0
    return sample


def to_tflite(model, quantization: str, io_type: str = "float32", calibration: np.ndarray | None = None) -> bytes:
    """Convert a Keras model (taking float pixels 0..255) to TFLite bytes."""
    from edge.converter.tfkeras import tf

    quant = QUANTIZATIONS[quantization]
    if io_type not in quant.io_types:
        raise ValueError(f"io type {io_type} does not go with {quantization}")
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if quant.name != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quant.name == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quant.calibrate:
        if calibration is None or not len(calibration):
            raise ValueError("int8 quantization needs calibration images")
        converter.representative_dataset = lambda: ([image[None]] for image in calibration)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = getattr(tf, io_type)
        converter.inference_output_type = getattr(tf, io_type)
    with quiet_stderr(), warnings.catch_warnings():
        # uint8/int8 IO with no input statistics is what we ask for: the input scale comes from calibration
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs were expected")
        return bytes(converter.convert())

