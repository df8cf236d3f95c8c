"""The quantization table and the TFLite conversion it drives."""

import contextlib
import io
import re
import warnings
from dataclasses import dataclass

import numpy as np

from edge.errors import EdgeError
from edge.quiet import quiet_stderr

IO_TYPES = ("uint8", "int8", "float32")
MIN_CALIBRATION_IMAGES = 16  # fewer give activation ranges that the next images overrun
RECIPE = "static_wi8_ai8"  # the LiteRT Quantizer's: int8 weights and activations, every operation it can


@dataclass(frozen=True)
class Quantization:
    name: str
    description: str
    io_types: tuple[str, ...]  # first is the default
    calibrate: bool  # needs representative images


# A table, a row a choice: kept as it reads, not one value a line.
# fmt: off
QUANTIZATIONS = {q.name: q for q in (
    Quantization("float32", "no quantization", ("float32",), False),
    Quantization("float16", "float16 weights, float32 compute", ("float32",), False),
    Quantization("dynamic", "int8 weights, float activations (often slower than float32 on CPU)", ("float32",), False),
    Quantization("int8", "full integer: int8 weights and activations (fastest on CPU; needed by the Edge TPU)",
                 IO_TYPES, True),
)}
# fmt: on


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


def to_tflite(
    model, quantization: str, io_type: str = "float32", calibration: np.ndarray | None = None, qat: bool = False
) -> bytes:
    """Convert a Keras model (taking float pixels 0..255) to TFLite bytes. int8 goes through the LiteRT
    Quantizer (the TFLite converter's own quantization is deprecated), from the float32 file; a
    quantization-aware model (`qat`) through the converter, the one that reads its learned ranges."""
    from edge.converter.tfkeras import tf

    quant = QUANTIZATIONS[quantization]
    if io_type not in quant.io_types:
        raise ValueError(f"io type {io_type} does not go with {quantization}")
    if quant.calibrate and (calibration is None or not len(calibration)):
        raise ValueError("int8 quantization needs calibration images")
    call = tf.function(lambda x: model(x, training=False)).get_concrete_function(
        tf.TensorSpec([None, *model.input_shape[1:]], tf.float32)
    )
    converter = tf.lite.TFLiteConverter.from_concrete_functions([call], model)
    converter.experimental_lower_to_saved_model = False  # a SavedModel round trip: 20-30 s more, the same file
    if quant.name in ("float16", "dynamic") or qat:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quant.name == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quant.calibrate and qat:
        assert calibration is not None  # checked above
        converter.representative_dataset = lambda: ([image[None]] for image in calibration)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = getattr(tf, io_type)
        converter.inference_output_type = getattr(tf, io_type)
    with quiet_stderr(), warnings.catch_warnings():
        # uint8/int8 IO with no input statistics is what we ask for: the input scale comes from calibration
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs were expected")
        tflite = with_signature(bytes(converter.convert()))
    if quant.calibrate and not qat:
        assert calibration is not None  # checked above
        return quantize_int8(calibrate(tflite, calibration), io_type)
    return tflite


def with_signature(tflite: bytes) -> bytes:
    """The file with a "serving_default" signature (image -> scores), which a conversion that skips the
    SavedModel leaves out, and which the LiteRT Quantizer calibrates and validates through."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(tflite))
    graph = model.subgraphs[0]

    def tensor(name: str, index: int):
        entry = schema.TensorMapT()
        entry.name, entry.tensorIndex = name, index
        return entry

    signature = schema.SignatureDefT()
    signature.signatureKey, signature.subgraphIndex = "serving_default", 0
    signature.inputs, signature.outputs = [tensor("image", graph.inputs[0])], [tensor("scores", graph.outputs[0])]
    model.signatureDefs = [signature]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def tool(quantization: str, qat: bool) -> str:
    """What made a file of `to_tflite`, for its manifest."""
    from importlib.metadata import version

    if QUANTIZATIONS[quantization].calibrate and not qat:
        return f"LiteRT Quantizer (ai-edge-quantizer {version('ai-edge-quantizer')}), recipe {RECIPE}"
    return f"TFLite converter (tensorflow {version('tensorflow')})"


# What an operation kept out of int8 computes in instead.
FALLBACKS = {
    "float": "float32, as in the float model: fastest on a CPU (XNNPACK), its weights 4x the bytes",
    "int16": "int16 activations and int8 weights: small, but slower than float on a CPU (16-bit kernels)",
}


@dataclass(frozen=True)
class Calibrated:
    """A float model and the activation ranges its calibration images gave: every quantization of it,
    plain or with some operations kept higher, starts from here without calibrating again."""

    model: bytes
    ranges: dict
    inputs: np.ndarray  # the calibration images, as the model takes them

    @property
    def images(self) -> int:
        return len(self.inputs)


@contextlib.contextmanager
def quantizer_errors():
    """The LiteRT Quantizer's refusals (custom operations, control flow, odd tensors) as one line."""
    try:
        yield
    except (ValueError, RuntimeError, KeyError, NotImplementedError, IndexError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise EdgeError(
            f"the LiteRT Quantizer cannot quantize this model ({first}): keep it float32, or "
            "quantize it with the tool that made it"
        ) from None


def signature_input(model: bytes) -> tuple[str, str]:
    """(the name the model's signature gives its input, which calibration data is keyed by; the input tensor's
    name, which calibration ranges are)."""
    from ai_edge_litert.interpreter import Interpreter

    ((name, detail),) = (
        Interpreter(model_content=model).get_signature_runner("serving_default").get_input_details().items()
    )
    return name, detail["name"]


def calibrate(float_model: bytes, calibration: np.ndarray) -> Calibrated:
    """Run the float model over `calibration` (what its input takes, float32) for every activation's range."""
    from ai_edge_quantizer import quantizer, recipe

    name, tensor = signature_input(float_model)
    with quantizer_errors(), quiet_stderr(), contextlib.redirect_stderr(io.StringIO()):  # its progress bars
        q = quantizer.Quantizer(float_model, getattr(recipe, RECIPE)())
        ranges = q.calibrate({"serving_default": [{name: image[None]} for image in calibration]}, num_threads=2)
    # the input's range exactly as the images span it (the quantizer keeps a running average of each
    # image's): calibration images reach both ends of the input range, so a uint8 input takes raw pixels
    ranges[tensor] = {
        bound: np.full((1, 1, 1, 1), f(calibration), np.float32) for bound, f in (("min", np.min), ("max", np.max))
    }
    return Calibrated(bytes(float_model), ranges, calibration)


def quantize_int8(calibrated: Calibrated, io_type: str, keep: dict[str, str] | None = None) -> bytes:
    """Full integer (int8 weights and activations) with the LiteRT Quantizer, the input and output as
    `io_type`; except the operations in `keep` ({scope: a FALLBACKS name}), which stay higher."""
    from ai_edge_quantizer import qtyping, quantizer, recipe

    unsigned = qtyping.OpQuantizationConfig(
        activation_tensor_config=qtyping.TensorQuantizationConfig(
            num_bits=8, symmetric=False, dtype=qtyping.TensorDataType.UINT
        ),
        compute_precision=qtyping.ComputePrecision.INTEGER,
    )
    with quantizer_errors(), quiet_stderr(), contextlib.redirect_stderr(io.StringIO()):
        q = quantizer.Quantizer(calibrated.model, getattr(recipe, RECIPE)())
        for edge in ("INPUT", "OUTPUT") if io_type != "int8" else ():
            if io_type == "float32":
                q.update_quantization_recipe(".*", edge, algorithm_key="no_quantize")
            else:
                q.update_quantization_recipe(".*", edge, op_config=unsigned)
        for scope, fallback in (keep or {}).items():
            exactly = f"^{re.escape(scope)}$"  # a scope is its output tensors' names, ";"-joined
            if fallback == "float":
                q.update_quantization_recipe(exactly, "*", algorithm_key="no_quantize")
            else:
                q.add_static_config(exactly, "*", activation_num_bits=16, weight_num_bits=8)
        return bytes(
            q.quantize(calibrated.ranges, enable_progress_bar=False, enable_progress_report=False).quantized_model
        )
