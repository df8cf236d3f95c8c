"""`edge convert`, end to end: image folders -> fine-tuned Keras model -> quantized TFLite -> bundle.

The exported file is checked with the same interpreter code the device runs, on the validation split,
and those numbers go into the manifest beside the Keras model's.
"""

import hashlib
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from edge.bundle import COLOR, RESIZE, check_destination, write_bundle
from edge.checks import make_checks
from edge.converter.backbones import get_backbone
from edge.converter.datasets import Split, load_split
from edge.converter.options import ConvertOptions
from edge.converter.quantize import (
    MIN_CALIBRATION_IMAGES,
    QUANTIZATIONS,
    calibrate,
    calibration_images,
    to_tflite,
    tool,
)
from edge.converter.selective import Search, keep_budget, latency_cost, off_edgetpu, record
from edge.devices.profiles import EDGETPU_CACHE_MIB, EDGETPU_SRAM_MB, IMX500_CONVERTER, IMX500_MEMORY_MB, get_profile
from edge.errors import EdgeError
from edge.eval.baseline import against_guessing
from edge.eval.evaluate import WARMUP, classify_all
from edge.eval.fingerprint import fingerprint
from edge.eval.latency import latency_stats
from edge.eval.metrics import accuracy, confusion_matrix, macro_f1
from edge.eval.paired import SLACK, judge
from edge.interpreter import io_facts, make_interpreter, op_precisions
from edge.progress import Log
from edge.results import ConvertResult
from edge.version import made_by


def convert(options: ConvertOptions, log: Log | None = None) -> ConvertResult:
    """Run the whole conversion; returns the summary (the manifest plus the bundle's path)."""
    log = log or Log(enabled=False)
    opts = options.resolved()
    out = opts.out or Path("bundles") / f"{opts.model}-{opts.device or opts.quantize}"
    opts = replace(opts, out=check_destination(out))
    assert opts.quantize and opts.io_type and opts.out  # resolved() decided them
    spec = get_backbone(opts.model)
    started = time.perf_counter()

    profile = get_profile(opts.device) if opts.device else None
    if profile and profile.compiler == IMX500_CONVERTER:  # before the training, not after it
        from edge.devices.imx500 import check_ready

        check_ready(opts.qat)
    split = read_images(opts, log)
    model, training = fit(opts, split, log)
    warnings = [w for w in [sram_warning(model.count_params(), profile)] if w] + taught_warnings(training)
    for warning in warnings:  # before the export: the user may rather stop here
        log(f"warning: {warning}")
    keras_scores = model.predict(split.val_x.astype(np.float32), batch_size=opts.batch_size, verbose=0)
    right = keras_scores.argmax(1) == split.val_y
    baseline = against_guessing(split.val_y, right, len(split.classes))
    if baseline["weak"] and not opts.allow_weak:
        raise EdgeError(weak_refusal(float(right.mean()), baseline, split))  # before the export: no int8 search
    exported = export(model, split, opts.quantize, opts.io_type, opts, log, keras_scores)
    tflite, search = exported.model, exported.search
    interpreter = make_interpreter(tflite)
    metrics, tflite_scores = check(interpreter, exported.keras_scores, split, opts, log)
    if metrics["baseline"]["weak"] and not opts.allow_weak:
        raise EdgeError(weak_refusal(metrics["tflite"]["accuracy"], metrics["baseline"], split))
    if metrics["drop_exceeded"] and not opts.accept_drop:
        raise EdgeError(over_budget(metrics, opts.quantize, opts.qat, search))
    budget = None
    if search and exported.float_model:  # a search starts from the float file
        latency = latency_cost(search, exported.float_model, split.val_x, (0.0, 255.0), log=log)
        budget = record(search, opts.fallback, opts.max_drop, latency)
        warnings += [w for w in [edgetpu_warning(search, profile, opts.fallback)] if w]
    warnings += [w for w in [drop_warning(metrics, opts.quantize)] if w]
    if metrics["baseline"]["weak"]:
        weak = weak_model(metrics["tflite"]["accuracy"], metrics["baseline"], split)
        warnings.append(f"{weak} (written because of --allow-weak)")
    edgetpu, compiled = compile_for(profile, tflite, opts.out, log)
    imx500, sensor_files = for_sensor(profile, model, split, exported.keras_scores, opts, log)
    if imx500:
        metrics["imx500"] = imx500.pop("metrics")
        warnings += imx500["warnings"]

    sparsity = None
    if opts.prune:
        from edge.converter.prune import tflite_sparsity

        sparsity = {"target": opts.prune, **tflite_sparsity(tflite)}

    io = io_facts(interpreter)
    about = made_by()
    manifest = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "edge_version": about["edge_version"],
        "backbone": {
            "name": spec.name,
            "weights": opts.weights,
            "input_size": opts.input_size,
            "alpha": opts.alpha if spec.alpha else None,
            "preprocessing": spec.preprocessing,
        },
        "labels": split.classes,
        "input": {**io["input"], "color": COLOR, "range": [0, 255], "resize": RESIZE},
        "output": {**io["output"], "activation": "softmax"},
        "quantization": {
            "mode": opts.quantize,
            "io_type": opts.io_type,
            "qat": opts.qat,
            "calibration_images": exported.calibration_images,
            "tool": tool(opts.quantize, opts.qat),
            "operations": op_precisions(interpreter),
            "budget": budget,
        },
        "sparsity": sparsity,
        "device": profile.name if profile else None,
        "edgetpu": edgetpu or None,
        "imx500": imx500 or None,
        "metrics": metrics,
        "fingerprint": fingerprint(tflite_scores, split.classes, hashlib.sha256(tflite).hexdigest()),  # for drift
        "warnings": warnings,
        "training": {
            "options": settings(opts),
            "images": {
                "train": len(split.train_y),
                "validation": len(split.val_y),
                "skipped": [{"path": p, "why": w} for p, w in split.skipped],
            },
            **training,
            "seconds": round(time.perf_counter() - started, 1),
            "host": about["host"],
        },
    }
    check_files, manifest["checks"] = make_checks(split.val_x, split.val_y, tflite_scores)
    bundle = write_bundle(opts.out, tflite, manifest, edgetpu=compiled, files={**sensor_files, **check_files})
    return ConvertResult(bundle=str(bundle.path), **bundle.manifest)


def sram_warning(parameters: int, profile) -> str | None:
    """Full-int8 weights take about a byte a parameter; the Edge TPU caches about 7 MiB of them on the chip, and
    the AI Camera's sensor must hold them all beside its activations in 8 MB."""
    if profile and profile.compiler == IMX500_CONVERTER and parameters > (IMX500_MEMORY_MB - 1) * 2**20:
        return (
            f"about {parameters / 2**20:.0f} MB of int8 weights: the AI Camera's sensor holds the whole network, "
            f"activations too, in {IMX500_MEMORY_MB} MB, so this one cannot run there (imxconv-tf will say so); "
            "smaller backbones: mobilenetv2, mobilenetv3small, mobilenetv3large, efficientnetb0"
        )
    if not profile or profile.delegate != "edgetpu" or parameters <= EDGETPU_CACHE_MIB * 2**20:
        return None
    return (
        f"about {parameters / 2**20:.0f} MB of int8 weights: more than fit in the Edge TPU's {EDGETPU_SRAM_MB} MB "
        "on-chip memory, so the rest streams from the host every inference (Coral's figures: MobileNet v2 2.6 ms, "
        "ResNet-50 49 ms, VGG16 296 ms); smaller backbones: mobilenetv2, mobilenetv3small, efficientnetb0"
    )


def taught_warnings(training: dict) -> list[str]:
    """A teacher that trained on the validation images; a student the teacher made worse, as they show."""
    distillation = training.get("distillation") or {}
    seen, gain = (distillation.get("teacher") or {}).get("trained_on_validation_images"), distillation.get("gain")
    warnings = []
    if seen:
        warnings.append(
            f"the teacher trained on {seen} of the validation images, as its bundle's options split its folders: it "
            "scores them too well, and the student's early stopping follows it there; train the teacher with the "
            "same --data, --val-split and --seed as the student"
        )
    if gain and gain["shown"] == "worse":
        warnings.append(
            f"the teacher made the student worse: {gain['taught']:.4f} taught against {gain['alone']:.4f} alone on "
            f"the validation images (p = {gain['p_value']:.2g}); a lower --distill-weight or --distill-temperature, "
            "or a better teacher, may help"
        )
    return warnings


def compile_for(profile, tflite: bytes, out: Path, log: Log) -> tuple[dict, bytes | None]:
    """Run the device's compiler if it needs one: (the manifest's record, the compiled model or None).
    Without the compiler the bundle is still written, with how to compile it later."""
    if not profile or profile.delegate != "edgetpu":
        return {}, None
    from edge.devices.edgetpu import compile_record

    log(f"compiling for {profile.name} with {profile.compiler}")
    try:
        return compile_record(tflite)
    except EdgeError as e:
        return {
            "compiled": False,
            "warnings": [f"not compiled for the Edge TPU: {e} Then: edge devices compile {out}"],
        }, None


def for_sensor(profile, model, split: Split, keras_scores, opts: ConvertOptions, log: Log) -> tuple[dict, dict]:
    """For the AI Camera: the network quantized by MCT and converted by imxconv-tf in the imx500 toolchain, its
    simulated accuracy on the validation images held to --max-drop like the file's. (The manifest's "imx500"
    record, with its "metrics"; the files for the bundle.)"""
    if not profile or profile.compiler != IMX500_CONVERTER:
        return {}, {}
    from edge.devices.imx500 import convert as convert_for_imx500
    from edge.devices.imx500 import sensor_metrics

    log(f"converting for {profile.name} in the imx500 toolchain")
    calibration = calibration_images(split.train_x, opts.calibration_images, opts.seed)  # the TFLite export's
    converted = convert_for_imx500(model, calibration, split.val_x, keras_scores, log)
    metrics = sensor_metrics(
        compare(split.val_y, keras_scores, converted.scores, len(split.classes), opts.max_drop, tested=opts.mcnemar)
    )
    log(f"on the sensor (MCT, simulated): accuracy {metrics['accuracy']:.4f}, {metrics['drop']:+.4f} below Keras")
    if metrics["drop_exceeded"]:
        below = (
            f"the sensor's accuracy (MCT-quantized, simulated) {metrics['accuracy']:.4f} is {metrics['drop']:.4f} "
            f"below the Keras model's, more than --max-drop {opts.max_drop}"
        )
        if not opts.accept_drop:
            raise EdgeError(
                f"{below}; nothing written: give more --calibration-images, raise --max-drop, or "
                "--accept-drop to write it anyway"
            )
        converted.record["warnings"].append(f"{below} (written because of --accept-drop)")
    return {**converted.record, "metrics": metrics}, converted.files


def read_images(opts: ConvertOptions, log: Log) -> Split:
    """The training and validation images at the input size; skipped files are reported."""
    assert opts.input_size  # resolved() decided it
    split = load_split(opts.data, opts.input_size, opts.val, opts.val_split, opts.seed, log)
    log(
        f"{len(split.train_y)} training and {len(split.val_y)} validation images, "
        f"{len(split.classes)} classes: {', '.join(split.classes)}"
    )
    if split.skipped:
        log(f"skipped {len(split.skipped)} unreadable file(s):")
        for path, why in split.skipped:
            log(f"  {path}: {why}")
    return split


def fit(opts: ConvertOptions, split: Split, log: Log) -> tuple[Any, dict]:
    """Build the classifier and train it (from a teacher too, with --teacher; then quantization-aware, with
    --qat)."""
    # TensorFlow is imported from here on.
    from edge.converter.distill import gain, load_teacher, teach
    from edge.converter.distribute import training_devices
    from edge.converter.train import train_qat

    devices = training_devices()
    log(devices.describe(opts.batch_size))
    teaching = None
    if opts.teacher:
        teacher = load_teacher(opts.teacher, split.classes)
        assert opts.distill_temperature and opts.distill_weight is not None  # resolved() decided them
        teaching = teach(teacher, split, opts.distill_temperature, opts.distill_weight, log)
    elif split.unlabelled:
        log(f"{len(split.unlabelled)} image(s) in _unlabelled/ left out: only a --teacher labels them")
    with devices.strategy.scope():  # variables made, compiled and fitted on every device
        model, training = build_and_train(opts, split, log, teaching)
        if teaching:
            training["distillation"] = teaching.record
            if opts.gain:
                log("training the student without the teacher too, to measure what the teacher gains")
                alone, _ = build_and_train(opts, split, log)
                taught, plain = (m.predict(split.val_x.astype(np.float32), verbose=0).argmax(1) for m in (model, alone))
                training["distillation"] = {**teaching.record, "gain": gain(split.val_y, taught, plain)}
        if opts.qat:
            model, phase = train_qat(model, split, opts, log, teaching)
            training["phases"].append(phase)
    return model, {**training, "devices": devices.record(opts.batch_size)}


def build_and_train(opts: ConvertOptions, split: Split, log: Log, teaching=None) -> tuple[Any, dict]:
    """A new classifier, trained: from the same initial weights on one device or several, taught or not."""
    from edge.converter.backbones import build_classifier
    from edge.converter.tfkeras import keras
    from edge.converter.train import train

    assert opts.input_size  # resolved() decided it
    keras.utils.set_random_seed(opts.seed)
    clf = build_classifier(get_backbone(opts.model), len(split.classes), opts.input_size, opts.weights, opts.alpha)
    return train(clf, split, opts, log, teaching)


@dataclass
class Exported:
    model: bytes
    keras_scores: np.ndarray  # the Keras model's on the validation images: what the file is checked against
    calibration_images: int
    float_model: bytes | None = None  # int8 through the LiteRT Quantizer: the float32 file it started from
    search: Search | None = None  # and how it kept the accuracy budget


def export(
    model, split: Split, quantize: str, io_type: str, opts: ConvertOptions, log: Log, keras_scores=None
) -> Exported:
    """Convert to TFLite. int8 (unless quantization-aware) goes through the LiteRT Quantizer, keeping
    operations higher while its validation accuracy falls more than opts.max_drop below Keras' (its scores on
    the validation images: `keras_scores` where the caller has them)."""
    log(f"exporting {quantize} TFLite (io {io_type})")
    quant = QUANTIZATIONS[quantize]
    if keras_scores is None:
        keras_scores = model.predict(split.val_x.astype(np.float32), batch_size=opts.batch_size, verbose=0)
    if not quant.calibrate:
        return Exported(to_tflite(model, quantize, io_type), keras_scores, 0)
    calibration = calibration_images(split.train_x, opts.calibration_images, opts.seed)
    if len(calibration) < MIN_CALIBRATION_IMAGES:
        raise EdgeError(
            f"{len(calibration)} training images are too few to calibrate int8 (at least "
            f"{MIN_CALIBRATION_IMAGES}): add images, or use --quantize float16"
        )
    if opts.qat:
        return Exported(to_tflite(model, quantize, io_type, calibration, qat=True), keras_scores, len(calibration))
    float_model = to_tflite(model, "float32")
    reference = float(np.mean(keras_scores.argmax(1) == split.val_y))
    # the float file computes what Keras does (to 1e-4): Keras' scores stand for its
    search = keep_budget(
        calibrate(float_model, calibration),
        io_type,
        split.val_x,
        split.val_y,
        (0.0, 255.0),
        reference,
        opts.max_drop,
        opts.fallback,
        log,
        keras_scores,
        opts.mcnemar,
    )
    return Exported(search.model, keras_scores, len(calibration), float_model, search)


def check(
    interpreter, keras_scores: np.ndarray, split: Split, opts: ConvertOptions, log: Log
) -> tuple[dict, np.ndarray]:
    """Run the exported file (loaded in the interpreter the device uses) on the validation images: its
    accuracy against the Keras model's, and its latency on this host; and its scores."""
    log("checking the exported model on the validation images")
    times: list[float] = []
    rows = classify_all(interpreter, ((x, None) for x in split.val_x), warmup=WARMUP, times=times)
    tflite_scores = np.stack([scores for scores, _ in rows])
    metrics = compare(split.val_y, keras_scores, tflite_scores, len(split.classes), opts.max_drop, tested=opts.mcnemar)
    metrics["host_latency_ms"] = latency_stats(times, WARMUP)
    return metrics, tflite_scores


REFERENCES = {
    "keras": "the Keras model's",
    "float32": "the float model's",
    "pytorch": "PyTorch's",
}  # what a file's accuracy is held to


def compare(
    y_true,
    reference_scores,
    tflite_scores,
    n_classes: int,
    max_drop: float,
    reference: str = "keras",
    tested: bool = True,
) -> dict:
    """Accuracy and macro F1 of the reference model (a REFERENCES name) and the file, how often they agree,
    and the accuracy drop, judged against `max_drop` (`tested`: by McNemar's exact test, edge.eval.paired)."""

    def scores(pred):
        cm = confusion_matrix(y_true, pred, n_classes)
        return {"accuracy": accuracy(cm), "macro_f1": macro_f1(cm)}

    reference_pred, tflite_pred = reference_scores.argmax(1), tflite_scores.argmax(1)
    r, t = scores(reference_pred), scores(tflite_pred)
    drop = r["accuracy"] - t["accuracy"]
    verdict = judge(y_true, reference_pred, tflite_pred, max_drop, tested, drop)
    return {
        "split": "validation",
        "n": int(len(y_true)),
        "reference": reference,
        reference: r,
        "tflite": t,
        "agreement": float(np.mean(reference_pred == tflite_pred)),
        "drop": drop,
        "max_drop": max_drop,
        "drop_exceeded": verdict.over,
        "paired": verdict.to_json(),
        "baseline": against_guessing(y_true, tflite_pred == y_true, n_classes),
    }


def weak_model(accuracy: float, baseline: dict, split: Split) -> str:
    """A model no better than guessing: its `accuracy` on the validation images against always answering the most
    common class (`baseline`: edge.eval.baseline.against_guessing's)."""
    b = baseline
    return (
        f"the model is no better than guessing: {accuracy:.4f} on {len(split.val_y)} validation images, where "
        f"always answering '{split.classes[b['majority_class']]}' gets {b['majority_accuracy']:.4f} (chance "
        f"{b['chance']:.4f}; p = {b['p_value']:.2g})"
    )


def weak_refusal(accuracy: float, baseline: dict, split: Split) -> str:
    return (
        f"{weak_model(accuracy, baseline, split)}; nothing written: use pretrained weights (--weights imagenet), more "
        "images a class, or more --epochs; --allow-weak writes it anyway"
    )


def _below(metrics: dict, quantize: str) -> str:
    reference = metrics["reference"]
    return (
        f"{quantize} accuracy {metrics['tflite']['accuracy']:.4f} is {metrics['drop']:.4f} below "
        f"{REFERENCES[reference]} {metrics[reference]['accuracy']:.4f}"
    )


def over_budget(metrics: dict, quantize: str, qat: bool, search: Search | None) -> str:
    """Why nothing was written: the accuracy lost, the budget, and what to do."""
    kept = (
        f" even with {len(search.kept)} of {len(search.operations)} operations kept higher (the nearest found)"
        if search and search.kept
        else ""
    )
    steps = [
        "raise --max-drop",
        *(["try --fallback float"] if search and "int16" in search.kept.values() else []),
        *(
            []
            if qat or quantize != "int8" or metrics["reference"] != "keras"
            else ["try --qat (quantization-aware training)"]
        ),
        "or give --accept-drop to write it anyway",
    ]
    return (
        f"{_below(metrics, quantize)}, more than --max-drop {metrics['max_drop']}{_shown(metrics)}{kept}; nothing "
        "written: " + ", ".join(steps)
    )


def _shown(metrics: dict) -> str:
    """What the validation images show of a drop over the budget, when the test judged it."""
    p = metrics["paired"]
    return f", as {p['n']} validation images show (p = {p['p_value']:.2g})" if p["tested"] else ""


def drop_warning(metrics: dict, quantize: str) -> str | None:
    """Over the budget, written because --accept-drop said so; or over it as measured, on too few images to
    show it is (written: the test judged it chance)."""
    p = metrics["paired"]
    if metrics["drop_exceeded"]:
        return (
            f"{_below(metrics, quantize)} (more than --max-drop {metrics['max_drop']}{_shown(metrics)}; written "
            "because of --accept-drop)"
        )
    if p["drop"] > p["max_drop"] + SLACK:
        return (
            f"{_below(metrics, quantize)}, more than --max-drop {p['max_drop']} as measured, but {p['n']} validation "
            f"images cannot show it is (p = {p['p_value']:.2g}; the drop may be up to {p['high']:.4f}): written; "
            "more validation images judge it closer, --measured-drop counts every image"
        )
    return None


def edgetpu_warning(search: Search, profile, fallback: str) -> str | None:
    """Operations kept higher leave the Edge TPU, and take every later operation with them."""
    if not (profile and profile.delegate == "edgetpu" and search.kept):
        return None
    return (
        f"{len(search.kept)} operation(s) kept {fallback} to hold --max-drop, and the Edge TPU runs only int8: "
        f"its compiler leaves the first of them and every later one to the CPU, {off_edgetpu(search)} of "
        f"{len(search.operations)} operations; a larger --max-drop keeps them on the TPU"
    )


def settings(opts) -> dict:
    """Options as the manifest records them (several data folders as a list)."""

    def plain(v):
        return (
            [plain(x) for x in v]
            if isinstance(v, tuple)
            else (str(v) if v is not None and not isinstance(v, (int, float, bool, str)) else v)
        )

    return {k: plain(v) for k, v in vars(opts).items() if k != "out"}
