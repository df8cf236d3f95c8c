"""The TFLite interpreter, as free functions (the way pycoral does it), for host and device alike.

LiteRT (`ai_edge_litert`) first; then `tflite_runtime` (supported, never required: it breaks with
numpy 2 and cannot load ops from newer TensorFlow); then `tf.lite` from a full TensorFlow.
Tensors are read by index and quantization parameters from the interpreter, never by name.
"""

import ctypes
import os
import platform
from collections import Counter
from pathlib import Path

import numpy as np

from edge.errors import EdgeError, choose, whole
from edge.quiet import quiet_stderr

RUNTIMES = {"ai_edge_litert": "ai-edge-litert", "tflite_runtime": "tflite-runtime", "tensorflow": "tensorflow"}

# Hardware delegates: the shared library each OS names it by, and how to get it.
DELEGATES: dict[str, dict] = {
    "edgetpu": {
        "library": {"Linux": "libedgetpu.so.1", "Darwin": "libedgetpu.1.dylib", "Windows": "edgetpu.dll"},
        "install": "install the Edge TPU runtime: add Coral's apt repository "
        "(https://coral.ai/docs/accelerator/get-started) and 'sudo apt install libedgetpu1-std'",
        "no_device": "plug in the Coral USB Accelerator (lsusb shows 1a6e:089a or 18d1:9302), preferably on a "
        "USB 3 port, or on a Dev Board check that the apex driver is loaded (ls /dev/apex_0)",
        "suffix": "_edgetpu.tflite",  # what edgetpu_compiler names its output; such a model needs the delegate
    },
}


def _runtime():
    """(Interpreter, load_delegate) of the first runtime installed."""
    try:
        from ai_edge_litert.interpreter import Interpreter, load_delegate
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter, load_delegate
        except ImportError:
            try:
                from tensorflow.lite import Interpreter
                from tensorflow.lite.experimental import load_delegate
            except ImportError:
                raise EdgeError("no TFLite interpreter installed: pip install ai-edge-litert") from None
    return Interpreter, load_delegate


def make_interpreter(model, threads: int | None = None, delegate: str | None = None):
    """An allocated interpreter for a .tflite path or the model's bytes; on `delegate` (a DELEGATES name)
    if given, and on the Edge TPU for a compiled `*_edgetpu.tflite` file."""
    Interpreter, load_delegate = _runtime()
    threads = resolve_threads(threads)
    source = {"model_content": bytes(model)} if isinstance(model, (bytes, bytearray)) else {"model_path": str(model)}
    name = "the model" if "model_content" in source else str(model)
    if "model_path" in source and not Path(model).is_file():
        raise EdgeError(f"model file {model} does not exist: give a .tflite file or a bundle folder")
    delegate = pick_delegate(name, delegate)
    delegates = [_load(delegate, load_delegate)] if delegate else []
    try:
        with quiet_stderr():  # "Created TensorFlow Lite XNNPACK delegate for CPU."
            interpreter = Interpreter(**source, num_threads=threads, experimental_delegates=delegates)
            interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "edgetpu-custom-op" in str(e):
            raise EdgeError(f"{name} is compiled for the Edge TPU: run it with --delegate edgetpu") from None
        raise UnusableModel(name, first) from None
    return interpreter


class UnusableModel(EdgeError):
    """A model the interpreter will not prepare; `reason`: the interpreter's own words."""

    def __init__(self, name: str, reason: str):
        super().__init__(f"{name} is not a usable TFLite model ({reason}): re-export it or check the file")
        self.reason = reason


def pick_delegate(model_name: str, delegate: str | None) -> str | None:
    """The delegate asked for (checked against DELEGATES), or the one a compiled model's name implies."""
    if delegate is None:
        return next((d for d, facts in DELEGATES.items() if model_name.endswith(facts["suffix"])), None)
    return choose("--delegate", delegate, DELEGATES)


def _load(delegate: str, load_delegate):
    """The delegate, or EdgeError naming what is missing: the runtime library, or the device itself."""
    facts = DELEGATES[delegate]
    library = facts["library"].get(platform.system(), facts["library"]["Linux"])
    try:
        ctypes.CDLL(library)
    except OSError:
        raise EdgeError(f"--delegate {delegate}: {library} is not installed; {facts['install']}") from None
    try:
        return load_delegate(library)
    except (ValueError, RuntimeError, OSError) as e:
        raise EdgeError(
            f"--delegate {delegate}: {library} found no {delegate} device ({str(e).strip()}); {facts['no_device']}"
        ) from None


THREADS_PER_CPU = 4  # the most taken: past one a CPU inference only slows, but a profile's count may meet a
# device with fewer CPUs than its kind usually has, and a service should still start there


def resolve_threads(threads: int | None) -> int:
    """Threads to run with: every CPU this process may use unless told."""
    usable = usable_cpus()
    most = THREADS_PER_CPU * usable
    if threads is not None and not whole(threads, 1, most):
        raise EdgeError(
            f"--threads {threads} must be at least 1 and at most {most} ({THREADS_PER_CPU} for each of "
            f"the {usable} CPUs this process may use; {usable} is fastest)"
        )
    return threads or usable


def usable_cpus() -> int:
    """CPUs this process may run on: a container or taskset may allow fewer than the machine has."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # no sched_getaffinity on macOS and Windows
        return os.cpu_count() or 1


def input_detail(interpreter) -> dict:
    details = interpreter.get_input_details()
    if len(details) != 1:
        raise EdgeError(f"the model has {len(details)} inputs; edge runs image classifiers with one image input")
    return details[0]


def output_detail(interpreter) -> dict:
    return interpreter.get_output_details()[0]


def n_classes(interpreter) -> int:
    """Scores per image: the output's size past the batch dimension."""
    return int(np.prod(output_detail(interpreter)["shape"][1:]))


def set_batch(interpreter, batch: int) -> None:
    """Make the model take `batch` images per invoke."""
    detail = input_detail(interpreter)
    if detail["shape"][0] == batch:
        return
    try:
        interpreter.resize_tensor_input(detail["index"], [batch, *detail["shape"][1:]])
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError):
        raise EdgeError(
            f"the model takes a fixed batch of {detail['shape'][0]}: use --batch {detail['shape'][0]}"
        ) from None


def runtime(interpreter) -> str:
    """Which TFLite runtime runs the model, and its version (reports say what was measured)."""
    from importlib.metadata import PackageNotFoundError, version

    package = type(interpreter).__module__.split(".")[0]
    try:
        return f"{package} {version(RUNTIMES.get(package, package))}"
    except PackageNotFoundError:
        return package


def input_size(interpreter) -> tuple[int, int]:
    """(height, width) the model takes."""
    shape = input_detail(interpreter)["shape"]
    if len(shape) != 4 or shape[3] != 3:
        raise EdgeError(f"the model's input has shape {list(shape)}; edge expects [1, height, width, 3] RGB images")
    return int(shape[1]), int(shape[2])


def invoker(interpreter):
    """A function: input tensor (already in the input's dtype) -> a copy of the raw output, with the
    tensor indices looked up once. Its calls are what `edge eval` times as latency."""
    input_index, output_index = input_detail(interpreter)["index"], output_detail(interpreter)["index"]

    def call(tensor: np.ndarray) -> np.ndarray:
        interpreter.set_tensor(input_index, tensor)
        interpreter.invoke()
        return interpreter.get_tensor(output_index)

    return call


def io_facts(interpreter) -> dict:
    """Input/output dtype, shape and quantization, as the manifest records them."""

    def facts(d):
        scale, zero_point = d["quantization"]
        return {
            "shape": [int(s) for s in d["shape"]],
            "dtype": np.dtype(d["dtype"]).name,
            "quantization": [float(scale), int(zero_point)],
        }

    return {"input": facts(input_detail(interpreter)), "output": facts(output_detail(interpreter))}


def op_precisions(interpreter) -> dict:
    """How many operations compute in each dtype (their output's), leaving out the QUANTIZE and DEQUANTIZE
    at the boundaries and the node a delegate (XNNPACK) adds for the operations it took: what a quantized
    model actually runs in integers, and what it left in float."""
    dtypes = {d["index"]: np.dtype(d["dtype"]).name for d in interpreter.get_tensor_details()}
    ops = interpreter._get_ops_details()  # the only listing of operations LiteRT's Python API has
    counts = Counter(
        dtypes[op["outputs"][0]]
        for op in ops
        if op["op_name"] not in ("QUANTIZE", "DEQUANTIZE", "DELEGATE") and len(op["outputs"])
    )
    return dict(sorted(counts.items()))
