"""`edge quantize`: a float model the user brings (a float32 bundle, or a bare float .tflite file) quantized
to int8 within an accuracy budget on their labelled images, without retraining and without TensorFlow.

The budget is measured on --data against the float model itself. Calibration takes a seeded sample of
--data, or of the images under --calibration.
"""

import hashlib
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from edge.bundle import COLOR, RESIZE, check_destination, read_bundle, write_bundle
from edge.checks import make_checks
from edge.converter.datasets import load_images
from edge.converter.options import (
    accept_drop_option,
    calibration_images_option,
    fallback_option,
    max_drop_option,
    mcnemar_option,
)
from edge.converter.pipeline import compare, compile_for, drop_warning, edgetpu_warning, over_budget, settings
from edge.converter.quantize import (
    IO_TYPES,
    MIN_CALIBRATION_IMAGES,
    calibrate,
    calibration_images,
    tool,
    with_signature,
)
from edge.converter.selective import (
    check_fallback,
    check_max_drop,
    keep_budget,
    latency_cost,
    per_operation,
    record,
    scores_of,
)
from edge.devices.profiles import IMX500_CONVERTER, check_model, get_profile
from edge.errors import EdgeError, OptionError, choose, whole
from edge.eval.fingerprint import fingerprint
from edge.folders import DATA_REQUIRED, scan
from edge.images import is_image_file
from edge.interpreter import input_size, io_facts, make_interpreter, op_precisions
from edge.model import load_model
from edge.options import option
from edge.progress import Log
from edge.results import QuantizeResult
from edge.version import made_by


@dataclass(frozen=True)
class QuantizeOptions:
    """The options of `edge quantize` (and edge.quantize); `resolved()` decides what was left to the device."""

    model: Path | None = None  # a float32 bundle folder or a float .tflite file: edge quantize's argument
    data: Path | None = None  # one sub-folder of images per class, named as the model's labels: edge eval's --data
    out: Path | None = option(None, "Bundle folder to write (required).")
    labels: Path | None = None  # a bare .tflite file's class names: edge run's --labels
    input_range: str | None = None  # what a bare .tflite file takes for pixels 0..255 [0,255]: edge run's
    calibration: Path | None = option(None, "Folder of images to calibrate on [--data].")
    calibration_images: int = calibration_images_option()
    io_type: str | None = option(None, "uint8, int8 or float32 [the --device's, else uint8].")
    device: str | None = option(
        None, "Quantize for this device profile (edge devices list); Coral: compile for the Edge TPU."
    )
    max_drop: float = max_drop_option()  # below the float model's accuracy on data
    mcnemar: bool = mcnemar_option()
    fallback: str = fallback_option()
    accept_drop: bool = accept_drop_option()
    seed: int = option(0, "Seed of the calibration sample.")

    def __post_init__(self):
        decided(self)

    def resolved(self) -> "QuantizeOptions":
        """A copy with what was left to the device decided: the IO type."""
        return replace(self, **decided(self))


def decided(opts: QuantizeOptions) -> dict:
    """The values `opts` leaves to the device, each option checked; raises OptionError (or EdgeError, from a
    table) on nonsense, before any work."""
    if opts.model is None:
        raise OptionError("give the float model: a float32 bundle folder or a .tflite file")
    if opts.data is None:
        raise OptionError(DATA_REQUIRED)
    if opts.out is None:
        raise OptionError("--out is required: the bundle folder to write")
    profile = get_profile(opts.device) if opts.device else None
    io_type = choose("--io-type", opts.io_type or (profile.io_type if profile else "uint8"), IO_TYPES)
    if profile:
        check_model(profile, "int8", io_type, f"--device {profile.name}", "leave out --io-type")
    if profile and profile.compiler == IMX500_CONVERTER:  # Sony's converter takes Keras models only
        raise OptionError(
            f"edge quantize makes TFLite files, and the AI Camera's converter takes a Keras model: "
            f"edge convert ... --device {profile.name}"
        )
    if opts.calibration is not None and not Path(opts.calibration).is_dir():
        raise OptionError(f"--calibration {opts.calibration} is not a folder: give a folder of images")
    if not whole(opts.calibration_images, MIN_CALIBRATION_IMAGES):
        raise OptionError(
            f"--calibration-images {opts.calibration_images} is too few: int8 ranges from under "
            f"{MIN_CALIBRATION_IMAGES} images do not hold (100-500 is usual)"
        )
    return {
        "model": Path(opts.model),
        "data": Path(opts.data),
        "out": check_destination(opts.out),
        "io_type": io_type,
        "device": profile.name if profile else None,
        "max_drop": check_max_drop(opts.max_drop),
        "fallback": check_fallback(opts.fallback),
    }


def quantize_model(options: QuantizeOptions, log: Log | None = None) -> QuantizeResult:
    """Quantize, keep the budget, write the bundle; returns the summary: the manifest, the bundle's path
    and the per-operation report."""
    log = log or Log(enabled=False)
    started = time.perf_counter()
    opts = options.resolved()
    assert opts.out and opts.io_type  # resolved() decided them
    profile = get_profile(opts.device) if opts.device else None
    source = load_model(opts.model, opts.labels, opts.input_range)
    if opts.out.resolve() in (source.path.resolve(), *source.path.resolve().parents):
        raise EdgeError(f"--out {opts.out} would overwrite the model it quantizes: give another folder")
    float_model = source.path.read_bytes()
    check_float(float_model, source.path)
    float_model = with_signature(float_model)  # what the quantizer calibrates through; a bare file may lack it
    folder = scan(opts.data, source.labels)
    height, width = input_size(source.interpreter)
    images, labels, skipped = read_images(folder.paths, height, width, log, folder.labels)
    if not len(images):
        raise EdgeError(
            f"{opts.data} has no readable images in its class folders: put .jpg/.png files in {opts.data}/<class name>/"
        )
    if opts.calibration is None:
        pool = images
    else:  # a sample of the folder's files, decoded: not the whole folder
        files = _image_files(opts.calibration)
        chosen = np.random.default_rng(opts.seed).permutation(len(files))[: opts.calibration_images]
        pool, _, unread = read_images([files[i] for i in sorted(chosen)], height, width, log)
        skipped += unread
    if len(pool) < MIN_CALIBRATION_IMAGES:
        raise EdgeError(
            f"{len(pool)} images are too few to calibrate int8 (at least {MIN_CALIBRATION_IMAGES}): "
            f"add images to {opts.calibration or opts.data}"
        )
    calibration = _scaled(calibration_images(pool, opts.calibration_images, opts.seed), source.input_range)

    log(f"calibrating on {len(calibration)} images")
    calibrated = calibrate(float_model, calibration)
    float_scores = scores_of(float_model, images, source.input_range)
    reference = float(np.mean(float_scores.argmax(1) == labels))
    log(f"float model: accuracy {reference:.4f} on {len(labels)} images")
    search = keep_budget(
        calibrated,
        opts.io_type,
        images,
        labels,
        source.input_range,
        reference,
        opts.max_drop,
        opts.fallback,
        log,
        float_scores,
        opts.mcnemar,
    )
    metrics = compare(labels, float_scores, search.scores, len(source.labels), opts.max_drop, "float32", opts.mcnemar)
    if metrics["drop_exceeded"] and not opts.accept_drop:
        raise EdgeError(over_budget(metrics, "int8", False, search))
    latency = latency_cost(search, float_model, images, source.input_range, log=log)
    warnings = [w for w in (drop_warning(metrics, "int8"), edgetpu_warning(search, profile, opts.fallback)) if w]
    edgetpu, compiled = compile_for(profile, search.model, opts.out, log)
    interpreter = make_interpreter(search.model)
    io = io_facts(interpreter)
    about = made_by()
    described = _described(source, (height, width))
    manifest = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "edge_version": about["edge_version"],
        "backbone": described["backbone"],
        "labels": source.labels,
        "input": {**io["input"], "color": COLOR, "range": list(source.input_range), "resize": RESIZE},
        "output": {**io["output"], "activation": described["activation"]},
        "quantization": {
            "mode": "int8",
            "io_type": opts.io_type,
            "qat": False,
            "calibration_images": calibrated.images,
            "tool": tool("int8", False),
            "operations": op_precisions(interpreter),
            "budget": record(search, opts.fallback, opts.max_drop, latency),
        },
        "sparsity": None,
        "device": opts.device,
        "edgetpu": edgetpu or None,
        "metrics": metrics,
        "fingerprint": fingerprint(search.scores, source.labels, hashlib.sha256(search.model).hexdigest()),  # drift
        "warnings": warnings,
        "quantized_from": {
            "model": str(source.path),
            "source": source.source,
            "data": str(opts.data),
            "calibration": str(opts.calibration or opts.data),
            "options": settings(opts),
            "images": len(labels),
            "skipped": [{"path": p, "why": w} for p, w in folder.skipped + skipped],
            "seconds": round(time.perf_counter() - started, 1),
            "host": about["host"],
        },
    }
    check_files, manifest["checks"] = make_checks(images, labels, search.scores)  # for a device that follows
    bundle = write_bundle(opts.out, search.model, manifest, edgetpu=compiled, files=check_files)
    return QuantizeResult(bundle=str(bundle.path), **bundle.manifest, per_operation=per_operation(search))


def check_float(model: bytes, path: Path) -> None:
    """The quantizer starts from float32 weights and activations: refuse a model already quantized (it would
    only warn and leave it as it is) or holding float16 weights."""
    from ai_edge_quantizer.utils import tfl_flatbuffer_utils as fb

    flat = fb.read_model(model)
    if not fb.is_float_model(flat):
        raise EdgeError(
            f"{path} is already quantized (it has integer tensors): give the float32 model it came "
            "from, e.g. 'edge convert --quantize float32' writes one"
        )
    if any(tensor.type == 1 for tensor in flat.subgraphs[0].tensors):  # TensorType.FLOAT16
        raise EdgeError(f"{path} has float16 weights: give the float32 model it came from")


def read_images(paths, height: int, width: int, log: Log, labels=None) -> tuple[np.ndarray, np.ndarray, list]:
    """(uint8 RGB images at the input size, their labels, the (path, why) of those that could not be read)."""
    bar = log.bar(len(paths), "reading images")
    images, kept, skipped = load_images(paths, height, bar.update, width)
    bar.finish()
    return images, (np.asarray(labels)[kept] if labels is not None else np.zeros(0)), skipped


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and is_image_file(p))


def _scaled(pixels: np.ndarray, input_range) -> np.ndarray:
    """Calibration images (float pixels 0..255, reaching both ends) as the float model's input takes them:
    they then reach both ends of its input range."""
    lo, hi = input_range
    return (pixels * np.float32((hi - lo) / 255.0) + np.float32(lo)).astype(np.float32)


def _described(source, size: tuple[int, int]) -> dict:
    """The backbone and output activation: a bundle's own record; for a bare file, what is known of it."""
    if source.source == "bundle":
        manifest = read_bundle(source.path.parent).manifest
        return {"backbone": manifest["backbone"], "activation": manifest["output"].get("activation")}
    return {
        "backbone": {
            "name": source.path.stem,
            "weights": None,
            "input_size": size if len(set(size)) > 1 else size[0],
            "alpha": None,
            "preprocessing": f"outside the model: pixels 0..255 map to {list(source.input_range)}",
        },
        "activation": None,
    }
