"""The TFLite interpreter, as free functions (the way pycoral does it), for host and device alike.

LiteRT (`ai_edge_litert`) first; then `tflite_runtime` (supported, never required: it breaks with
numpy 2 and cannot load ops from newer TensorFlow); then `tf.lite` from a full TensorFlow.
Tensors are read by index and quantization parameters from the interpreter, never by name.
"""
import os
from pathlib import Path

import numpy as np

from edge.errors import EdgeError
from edge.preprocess import output_to_scores, pixels_to_input


def _interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            try:
                from tensorflow.lite import Interpreter
            except ImportError:
                raise EdgeError("no TFLite interpreter installed: pip install ai-edge-litert") from None
    return Interpreter


def make_interpreter(model, threads: int | None = None):
    """An allocated interpreter for a .tflite path or the model's bytes."""
    Interpreter = _interpreter_class()
    threads = threads or os.cpu_count() or 1
    source = {"model_content": bytes(model)} if isinstance(model, (bytes, bytearray)) else {"model_path": str(model)}
    name = "the model" if "model_content" in source else str(model)
    if "model_path" in source and not Path(model).is_file():
        raise EdgeError(f"model file {model} does not exist: give a .tflite file or a bundle folder")
    try:
        interpreter = Interpreter(**source, num_threads=threads)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise EdgeError(f"{name} is not a usable TFLite model ({first}): re-export it or check the file") from None
    return interpreter


def input_detail(interpreter) -> dict:
    details = interpreter.get_input_details()
    if len(details) != 1:
        raise EdgeError(f"the model has {len(details)} inputs; edge runs image classifiers with one image input")
    return details[0]


def output_detail(interpreter) -> dict:
    return interpreter.get_output_details()[0]


def input_size(interpreter) -> tuple[int, int]:
    """(height, width) the model takes."""
    shape = input_detail(interpreter)["shape"]
    if len(shape) != 4 or shape[3] != 3:
        raise EdgeError(f"the model's input has shape {list(shape)}; edge expects [1, height, width, 3] RGB images")
    return int(shape[1]), int(shape[2])


def classify(interpreter, pixels: np.ndarray, input_range=(0.0, 255.0)) -> np.ndarray:
    """Scores (float, one per class) for one HxWx3 uint8 RGB image already at the input size."""
    inp = input_detail(interpreter)
    out = output_detail(interpreter)
    tensor = pixels_to_input(pixels[None], inp["dtype"], inp["quantization"], input_range)
    interpreter.set_tensor(inp["index"], tensor)
    interpreter.invoke()
    return output_to_scores(interpreter.get_tensor(out["index"])[0], out["quantization"])


def io_facts(interpreter) -> dict:
    """Input/output dtype, shape and quantization, as the manifest records them."""
    def facts(d):
        scale, zero_point = d["quantization"]
        return {"shape": [int(s) for s in d["shape"]], "dtype": np.dtype(d["dtype"]).name,
                "quantization": [float(scale), int(zero_point)]}
    return {"input": facts(input_detail(interpreter)), "output": facts(output_detail(interpreter))}
