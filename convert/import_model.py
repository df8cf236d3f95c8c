"""`edge import`: a classifier trained elsewhere (PyTorch, or any as ONNX) to an edge bundle.

Its preprocessing (size, --input-range, --mean, --std, colour order, layout) goes inside the exported graph, so
the bundle takes RGB pixels 0..255 as every edge bundle does; the float file is checked against its own framework
on the --data images (top-1 agreement and the largest score difference, refused under AGREEMENT); with --quantize int8
the float file is the start of the accuracy budget `edge quantize` keeps.
"""

import hashlib
import importlib
import math
import shutil
import tempfile
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from edge.bundle import COLOR, MAX_SIDE, RESIZE, check_destination, read_bundle, update_manifest, write_bundle
from edge.checks import make_checks
from edge.converter.options import (
    accept_drop_option,
    calibration_images_option,
    fallback_option,
    max_drop_option,
    mcnemar_option,
)
from edge.converter.pipeline import compare, settings
from edge.converter.quantize_model import QuantizeOptions, quantize_model, read_images
from edge.converter.selective import scores_of
from edge.devices.profiles import IMX500_CONVERTER, check_model, get_profile
from edge.errors import EdgeError, ModelError, OptionError, choose
from edge.eval.fingerprint import fingerprint
from edge.folders import DATA_REQUIRED, scan
from edge.interpreter import UnusableModel, io_facts, make_interpreter, op_precisions
from edge.model import parse_range, read_labels
from edge.options import option
from edge.progress import Log
from edge.results import ImportResult
from edge.version import made_by

AGREEMENT = 0.995  # top-1 agreement with the source framework on --data below which the file is refused
QUANTIZE = ("float32", "int8")
IMAGENET_MEAN, IMAGENET_STD = "0.485,0.456,0.406", "0.229,0.224,0.225"  # timm's and torchvision's, on 0..1
SUM_SLACK = 1e-3  # outputs in [0, 1] summing to 1 within this are probabilities already: no softmax added


@dataclass(frozen=True)
class ImportOptions:
    """The options of `edge import` (and edge.import_model); `resolved()` parses them."""

    model: Path | None = None  # an exported program (.pt2), TorchScript or ONNX file: edge import's argument
    data: Path | None = None  # one sub-folder of images per class, named as --labels: the images it is checked on
    labels: Path | None = option(None, "Class names, one a line, in the order of the model's outputs (required).")
    out: Path | None = option(None, "Bundle folder to write (required).")
    input_size: str | tuple[int, int] | None = option(
        None, "HEIGHT[,WIDTH] of the model's input, where the file leaves it open (TorchScript always does)."
    )
    input_range: str | tuple[float, float] = option(
        "0,1", "What the model takes pixels 0..255 to, before --mean and --std."
    )
    mean: str | tuple[float, float, float] = option(
        IMAGENET_MEAN, "Taken from each channel, given R,G,B (with --bgr too), after --input-range [ImageNet's]."
    )
    std: str | tuple[float, float, float] = option(
        IMAGENET_STD, "Each channel divided by this after --mean [ImageNet's]."
    )
    bgr: bool = option(False, "The model takes its channels in BGR order (as OpenCV reads images).")
    quantize: str = option("float32", "float32, or int8 within --max-drop of the float file on --data.")
    io_type: str | None = option(None, "With --quantize int8: uint8, int8 or float32 [the --device's, else uint8].")
    device: str | None = option(None, "The device profile it is for (edge devices list); Coral needs --quantize int8.")
    calibration_images: int = calibration_images_option()
    max_drop: float = max_drop_option()
    mcnemar: bool = mcnemar_option()
    fallback: str = fallback_option()
    accept_drop: bool = accept_drop_option()
    seed: int = option(0, "Seed of the calibration sample.")

    def __post_init__(self):
        decided(self)

    def resolved(self) -> "ImportOptions":
        return replace(self, **decided(self))

    def int8(self, float_bundle: Path) -> QuantizeOptions:
        """`edge quantize`'s options for the float bundle this import writes first."""
        return QuantizeOptions(
            model=float_bundle,
            data=self.data,
            out=self.out,
            calibration_images=self.calibration_images,
            io_type=self.io_type,
            device=self.device,
            max_drop=self.max_drop,
            mcnemar=self.mcnemar,
            fallback=self.fallback,
            accept_drop=self.accept_drop,
            seed=self.seed,
        )


def decided(opts: ImportOptions) -> dict:
    """Each option checked and parsed; raises OptionError on nonsense, before any work."""
    if opts.model is None:
        raise OptionError("give the model: an exported program (.pt2), a TorchScript file or an ONNX file")
    if opts.labels is None:
        raise OptionError("--labels is required: a text file of the class names, one a line, in output order")
    if opts.data is None:
        raise OptionError(DATA_REQUIRED + ", named as --labels: the converted model is checked on them")
    if opts.out is None:
        raise OptionError("--out is required: the bundle folder to write")
    quantize = choose("--quantize", opts.quantize, QUANTIZE)
    if opts.device and get_profile(opts.device).compiler == IMX500_CONVERTER:
        raise OptionError(
            f"--device {opts.device}: the AI Camera's converter (Sony's) takes Keras models only, not an imported one; "
            "run it on the Pi's CPU (--device rpi5) or train a Keras backbone with edge convert --device "
            f"{opts.device}"
        )
    if quantize == "int8":
        opts.int8(Path(opts.out))  # edge quantize's own checks of the options it is given
    elif opts.device:
        check_model(get_profile(opts.device), "float32", "float32", f"--device {opts.device}", "add --quantize int8")
    if opts.io_type is not None and quantize != "int8":
        raise OptionError("--io-type is for --quantize int8: a float32 file takes float32")
    lo, hi = parse_range(opts.input_range)
    if not lo < hi:
        raise OptionError(f"--input-range {opts.input_range}: the low end must be below the high end (e.g. 0,1)")
    std = _per_channel(opts.std, "--std")
    if not all(s > 0 for s in std):
        raise OptionError(f"--std {opts.std}: each must be above 0, e.g. {IMAGENET_STD}")
    return {
        "model": Path(opts.model),
        "data": Path(opts.data),
        "out": check_destination(opts.out),
        "quantize": quantize,
        "input_size": _size(opts.input_size),
        "input_range": (lo, hi),
        "mean": _per_channel(opts.mean, "--mean"),
        "std": std,
        "device": get_profile(opts.device).name if opts.device else None,
    }


def _size(value) -> tuple[int, int] | None:
    """--input-size as (height, width): one number for a square, or HEIGHT,WIDTH."""
    if value is None or isinstance(value, tuple):
        return value
    parts = str(value).replace("x", ",").split(",")
    try:
        sides = [int(p) for p in parts]
    except ValueError:
        sides = []
    if len(sides) not in (1, 2) or not all(1 <= s <= MAX_SIDE for s in sides):
        raise OptionError(f"--input-size {value}: give HEIGHT,WIDTH or one side, 1 to {MAX_SIDE} pixels, e.g. 224")
    return (sides[0], sides[-1])


def _per_channel(value, flag: str) -> tuple[float, float, float]:
    """Three numbers, R,G,B (one: the same for all three)."""
    if isinstance(value, tuple):
        return value
    try:
        numbers = [float(p) for p in str(value).split(",")]
    except ValueError:
        numbers = []
    if len(numbers) not in (1, 3) or not all(math.isfinite(n) for n in numbers):
        raise OptionError(f"{flag} {value}: give three numbers R,G,B (or one for all), e.g. {IMAGENET_MEAN}")
    return (numbers[0], numbers[1 % len(numbers)], numbers[-1])


@dataclass(frozen=True)
class Route:
    """How a kind of model file comes in: the module that loads, scores and converts it (edge.converter.torch_model
    or onnx_model, the same functions), the framework its reference scores come from, the converter."""

    module: str
    reference: str  # a pipeline.REFERENCES name
    title: str
    converter: str


ROUTES = {
    "pytorch": Route("edge.converter.torch_model", "pytorch", "PyTorch", "litert-torch"),
    "onnx": Route("edge.converter.onnx_model", "onnxruntime", "ONNX Runtime", "onnx2tf"),
}


def route_of(path: Path) -> Route:
    """ONNX by its suffix (a protobuf has no magic number to tell it by), else PyTorch's two zip formats."""
    return ROUTES["onnx" if path.suffix.lower() == ".onnx" else "pytorch"]


def import_model(options: ImportOptions, log: Log | None = None) -> ImportResult:
    """Load, wrap in the preprocessing, convert, check against the source framework, write the bundle
    (quantized to int8 within the budget, with --quantize int8); returns its summary."""
    log = log or Log(enabled=False)
    started = time.perf_counter()
    opts = options.resolved()
    assert opts.model and opts.data and opts.out  # resolved() checked them
    labels = read_labels(opts.labels)
    if not opts.model.is_file():
        raise ModelError(f"model {opts.model} does not exist: give an exported program (.pt2), TorchScript or .onnx")
    if opts.out.resolve() == opts.model.resolve().parent:
        raise EdgeError(f"--out {opts.out} is the folder of the model it imports: give another folder")
    route = route_of(opts.model)
    framework = importlib.import_module(route.module)
    log(f"loading {opts.model}")
    given_size = _size(opts.input_size)
    source = framework.load(opts.model, given_size)
    size = _input_size(source.size, given_size, opts.model)
    pixels = (*_affine(opts.input_range, opts.mean, opts.std), opts.bgr)
    _scores(framework.score(source, np.zeros((1, *size, 3), np.uint8), *pixels), labels, opts.model)  # no image yet
    folder = scan(opts.data, labels)
    images, truth, skipped = read_images(folder.paths, *size, log, folder.labels)
    if not len(images):
        raise EdgeError(
            f"{opts.data} has no readable images in its class folders: put .jpg/.png files in {opts.data}/<class name>/"
        )
    log(f"scoring {len(images)} images with {route.title}")
    raw = _scores(framework.score(source, images, *pixels), labels, opts.model)
    logits = not _are_probabilities(raw)
    reference = _softmax(raw) if logits else raw
    log(f"converting with {route.converter}")
    tflite = framework.to_tflite(source, size, *pixels, logits, images, log)
    interpreter = _runnable(tflite, opts.model)
    scores = scores_of(tflite, images, (0.0, 255.0))
    imported = {
        "model": str(opts.model),
        "sha256": hashlib.sha256(opts.model.read_bytes()).hexdigest(),
        "form": source.form,
        "layout": source.layout,
        "converter": {"name": route.converter, **framework.versions(source)},
        "preprocessing": _preprocessing(opts, logits),
        "agreement": _faithfulness(reference, scores, opts.model, route),
        "data": str(opts.data),
        "options": settings(opts),
        "images": len(truth),
        "skipped": [{"path": p, "why": w} for p, w in folder.skipped + skipped],
        "seconds": round(time.perf_counter() - started, 1),
        "host": made_by()["host"],
    }
    metrics = compare(truth, reference, scores, len(labels), opts.max_drop, route.reference, opts.mcnemar)
    manifest = _manifest(opts, labels, size, interpreter, tflite, metrics, scores, imported)
    check_files, manifest["checks"] = make_checks(images, truth, scores)
    if opts.quantize == "float32":
        bundle = write_bundle(opts.out, tflite, manifest, files=check_files)
        return ImportResult(bundle=str(bundle.path), **bundle.manifest)
    return _quantized(opts, tflite, manifest, check_files, log)


def _preprocessing(opts: ImportOptions, logits: bool) -> dict:
    return {
        "input_range": list(opts.input_range),
        "mean": list(opts.mean),
        "std": list(opts.std),
        "order": "BGR" if opts.bgr else "RGB",
        "softmax_added": logits,
    }


def _quantized(opts: ImportOptions, tflite: bytes, manifest: dict, check_files: dict, log: Log) -> ImportResult:
    """The float bundle, written aside, quantized into --out by edge quantize's budget search."""
    assert opts.out
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    aside = Path(tempfile.mkdtemp(prefix=f".{opts.out.name}.float-", dir=opts.out.parent))
    try:
        float_bundle = write_bundle(aside / "bundle", tflite, manifest, files=check_files)
        log("quantizing the float file to int8")
        result = quantize_model(opts.int8(float_bundle.path), log)
    finally:
        shutil.rmtree(aside, ignore_errors=True)
    quantized_from = {**result.quantized_from, "model": str(opts.model)}  # not the float bundle, now gone
    floated = float_bundle.manifest
    imported = {**floated["imported_from"], "float": {"metrics": floated["metrics"], "model": floated["model"]}}
    bundle = update_manifest(read_bundle(result.bundle), {"imported_from": imported, "quantized_from": quantized_from})
    return ImportResult(bundle=str(bundle.path), **bundle.manifest, per_operation=result.per_operation)


def _manifest(opts, labels, size, interpreter, tflite, metrics, scores, imported) -> dict:
    about = made_by()
    io = io_facts(interpreter)
    lo, hi = opts.input_range
    return {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "edge_version": about["edge_version"],
        "backbone": {
            "name": opts.model.stem,
            "weights": None,
            "input_size": size[0] if size[0] == size[1] else list(size),
            "alpha": None,
            "preprocessing": (
                f"inside the model: pixels 0..255 to [{lo:g}, {hi:g}], minus mean {list(opts.mean)}, over std "
                f"{list(opts.std)}{', in BGR order' if opts.bgr else ''}"
            ),
        },
        "labels": labels,
        "input": {**io["input"], "color": COLOR, "range": [0, 255], "resize": RESIZE},
        "output": {**io["output"], "activation": "softmax"},
        "quantization": {
            "mode": "float32",
            "io_type": "float32",
            "qat": False,
            "calibration_images": 0,
            "tool": None,
            "operations": op_precisions(interpreter),
            "budget": None,
        },
        "sparsity": None,
        "device": opts.device,
        "edgetpu": None,
        "metrics": metrics,
        "fingerprint": fingerprint(scores, labels, hashlib.sha256(tflite).hexdigest()),  # for drift
        "warnings": [w for w in [_weak(metrics, labels)] if w],
        "imported_from": imported,
    }


def _input_size(fixed: tuple[int, int] | None, given: tuple[int, int] | None, path: Path) -> tuple[int, int]:
    """The size the file fixes, or the one --input-size gives where it leaves it open."""
    if fixed is None and given is None:
        raise OptionError(f"{path} takes images of any size: give the one it was trained at with --input-size")
    if fixed is not None and given is not None and fixed != given:
        raise OptionError(
            f"--input-size {given[0]},{given[1]}: {path} takes {fixed[0]}x{fixed[1]} images only; "
            "leave --input-size out"
        )
    return fixed or given  # type: ignore[return-value]


def _affine(input_range, mean, std) -> tuple[np.ndarray, np.ndarray]:
    """--input-range, --mean and --std as one multiply and one add a channel: pixel p 0..255 goes to
    (lo + p (hi - lo) / 255 - mean) / std."""
    lo, hi = input_range
    mean, std = np.asarray(mean, np.float32), np.asarray(std, np.float32)
    return (np.float32((hi - lo) / 255.0) / std).astype(np.float32), ((np.float32(lo) - mean) / std).astype(np.float32)


def _scores(outputs: list[np.ndarray], labels: list[str], path: Path) -> np.ndarray:
    """The model's scores (its outputs, images stacked); refuses a model whose outputs are not one score a label."""
    if len(outputs) != 1:
        raise ModelError(
            f"{path} gives {len(outputs)} outputs: edge imports a classifier, with one output of a score per class"
        )
    scores = outputs[0]
    shape = [1, *scores.shape[1:]]
    if len(shape) == 2 and shape[1] != len(labels):
        raise ModelError(
            f"{path} gives {shape[1]} scores and --labels names {len(labels)} classes: give the labels "
            "file of this model, one class a line in the order of its outputs"
        )
    if len(shape) != 2:
        raise ModelError(
            f"{path} gives an output of shape {shape}: edge imports a classifier, whose output is "
            "[1, classes] (one score a class); a detector or segmenter is not one"
        )
    return scores


def _are_probabilities(scores: np.ndarray) -> bool:
    return bool(np.all(scores >= 0) and np.all(scores <= 1) and np.allclose(scores.sum(1), 1, atol=SUM_SLACK))


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(1, keepdims=True))
    return (e / e.sum(1, keepdims=True)).astype(np.float32)


def _runnable(tflite: bytes, path: Path):
    """The converted file, refused where LiteRT's builtin kernels cannot run it (StableHLO or custom operations
    the converter left in)."""
    try:
        interpreter = make_interpreter(tflite)
    except UnusableModel as e:
        raise EdgeError(
            f"{path} converted to a file LiteRT cannot run ({e.reason}): its operations are not all ones LiteRT has"
        ) from None
    names = {op["op_name"] for op in interpreter._get_ops_details()}  # LiteRT's only listing of operations
    odd = sorted(op for op in names if op.startswith("STABLEHLO") or op == "CUSTOM")
    if odd:
        raise EdgeError(
            f"{path} converted with operations LiteRT's builtin kernels lack ({', '.join(odd)}): a device cannot "
            "run it; replace those layers"
        )
    return interpreter


def _weak(metrics: dict, labels: list[str]) -> str | None:
    """Said where the file is no better than guessing on --data: most often preprocessing other than the model's."""
    b = metrics["baseline"]
    if not b["weak"]:
        return None
    return (
        f"the model is no better than guessing on --data: {metrics['tflite']['accuracy']:.4f} on {metrics['n']} "
        f"images, where always answering '{labels[b['majority_class']]}' gets {b['majority_accuracy']:.4f} (p = "
        f"{b['p_value']:.2g}): check --input-range, --mean, --std and --bgr against how it was trained"
    )


def _faithfulness(reference: np.ndarray, scores: np.ndarray, path: Path, route: Route) -> dict:
    """How closely the float file follows the source framework: refused under AGREEMENT top-1."""
    agree = reference.argmax(1) == scores.argmax(1)
    top1, difference = float(agree.mean()), float(np.abs(reference - scores).max())
    if top1 < AGREEMENT:
        raise EdgeError(
            f"the converted file disagrees with {route.title} on {int((~agree).sum())} of {len(agree)} images "
            f"(top-1 agreement {top1:.4f}, under {AGREEMENT}; largest score difference "
            f"{difference:.3g}): {route.converter} did not convert {path} faithfully; nothing written"
        )
    return {
        "with": route.title,
        "images": len(agree),
        "top1": top1,
        "max_difference": difference,
        "required": AGREEMENT,
    }
