"""Options of `edge convert`, stated once (the command line's flags are made from these fields), checked
against their tables when made, before any TensorFlow is imported."""

import math
from dataclasses import dataclass, replace
from pathlib import Path

from edge.converter.backbones import get_backbone
from edge.converter.distill import DISTILL_TEMPERATURE, DISTILL_WEIGHT
from edge.converter.quantize import IO_TYPES, MIN_CALIBRATION_IMAGES, QUANTIZATIONS
from edge.converter.selective import check_fallback, check_max_drop
from edge.devices.profiles import check_model, get_profile
from edge.errors import OptionError, choose
from edge.folders import DATA_REQUIRED
from edge.options import option


# The accuracy budget and the calibration sample, as edge convert and edge quantize both take them.
def max_drop_option():
    return option(
        0.01,
        "Most accuracy the exported file may lose against the model it comes from, on the "
        "validation images; int8 keeps the operations that hurt most higher to hold it.",
    )


def mcnemar_option():
    return option(
        True,
        "Count a drop over --max-drop only where the validation images show it (McNemar's exact test, p < 0.05): "
        "on a small set, one image's difference is chance [--measured-drop: count every image as measured].",
        flag="--mcnemar/--measured-drop",
    )


def fallback_option():
    return option("float", "What int8 keeps those operations in: float (fast on a CPU) or int16 (smaller, slower).")


def accept_drop_option():
    return option(False, "Write the nearest result found even if it misses --max-drop.")


def calibration_images_option():
    return option(200, "Images to calibrate on.")


@dataclass(frozen=True)
class ConvertOptions:
    """The options of `edge convert` (and edge.convert); `resolved()` decides what was left to the tables."""

    model: str = option("mobilenetv2", "Backbone (see --list-models).")
    # Several folders: their classes merge by name.
    data: Path | tuple[Path, ...] | None = option(
        None,
        "Folder with one sub-folder of images per class; again for more folders, whose classes merge by name "
        "(e.g. --data photos --data field-frames, from edge frames export).",
        multiple=True,
    )
    out: Path | None = option(None, "Bundle folder to write [bundles/MODEL-DEVICE, else bundles/MODEL-QUANTIZE].")
    val: Path | None = option(None, "Validation folder (same classes); else --val-split.")
    val_split: float = option(0.2, "Fraction of each class held out for validation.")
    seed: int = option(0, "Seed for the split, shuffling and augmentation.")
    weights: str = option("imagenet", "imagenet, none, or a weights/Keras model file.")
    input_size: int | None = option(None, "Square input size in pixels [the backbone's default].")
    alpha: float = option(1.0, "Width multiplier (MobileNets).")
    epochs: int = option(5, "Epochs training the head on the frozen backbone.")  # or everything, with weights none
    fine_tune_epochs: int = option(5, "Epochs fine-tuning the top layers.")
    # Given as text by the command line; auto: edge.converter.finetune chooses.
    fine_tune_layers: int | str = option(
        "auto", "Top backbone layers to unfreeze, or auto: chosen from the images per class and a linear probe."
    )
    lr: float = option(1e-3, "Learning rate of the head phase.")
    fine_tune_lr: float | None = option(
        None, "Learning rate of fine-tuning [with auto layers: chosen with them; else --lr / 10]."
    )
    batch_size: int = option(32)
    augment: bool = option(
        True,
        "Flips, rotation, zoom, shifts, brightness/contrast, cutout while training.",
        flag="--augment/--no-augment",
    )
    flip: bool = option(
        True,
        "Mirror images while augmenting; --no-flip for digits, text, signs: anything whose "
        "mirror image is another class or none.",
        flag="--flip/--no-flip",
    )
    prune: float | None = option(None, "Prune to this sparsity (0-1) while fine-tuning.")
    quantize: str | None = option(None, "float32, float16, dynamic or int8 [the --device's, else int8].")
    io_type: str | None = option(None, "uint8, int8 or float32 [uint8 for int8, else float32].")
    device: str | None = option(
        None,
        "Convert for this device profile (edge devices list): its quantization, and for Coral the Edge TPU compiler.",
    )
    qat: bool = option(False, "Quantization-aware training instead of post-training quantization.")
    teacher: Path | None = option(
        None,
        "Distil from this model: a bundle folder (a bigger backbone's, trained on the same folders) or a Keras model "
        "over the same classes. The student learns from its softened scores beside the labels, and from the images "
        "in a _unlabelled/ folder beside the class folders.",
    )
    distill_temperature: float | None = option(
        None, f"How far the teacher's scores are softened: above 0, 1 as they are [{DISTILL_TEMPERATURE:g}]."
    )
    distill_weight: float | None = option(
        None, f"The teacher's share of the loss, 0 to 1; the labels have the rest [{DISTILL_WEIGHT:g}]."
    )
    gain: bool = option(
        True,
        "With --teacher, train the student without it too (same seed) and record what the teacher gained: twice "
        "the training [--no-gain: the student once].",
        flag="--gain/--no-gain",
    )
    max_drop: float = max_drop_option()  # below the Keras model's validation accuracy
    mcnemar: bool = mcnemar_option()
    accept_drop: bool = accept_drop_option()
    allow_weak: bool = option(
        False,
        "Write the bundle even if the model is no better than guessing (always "
        "answering the most common class) on the validation images.",
    )  # edge.eval.baseline
    fallback: str = fallback_option()  # edge.converter.quantize.FALLBACKS
    calibration_images: int = calibration_images_option()

    def __post_init__(self):
        decided(self)

    def resolved(self) -> "ConvertOptions":
        """A copy with what was left to the tables decided: the input size, quantization, IO type, ..."""
        return replace(self, **decided(self))

    @property
    def tuning_lr(self) -> float:
        """The learning rate of phases after the first that no rule chooses for (QAT, pruning, given layers)."""
        return self.fine_tune_lr or self.lr / 10


def decided(opts: ConvertOptions) -> dict:
    """The values the tables decide for what `opts` leaves open, each option checked; raises OptionError (or
    EdgeError, from a table) on nonsense."""
    data = [
        Path(d)
        for d in (opts.data if isinstance(opts.data, (list, tuple)) else () if opts.data is None else (opts.data,))
    ]
    _check(bool(data), DATA_REQUIRED)
    spec = get_backbone(opts.model)
    profile = get_profile(opts.device) if opts.device else None
    quant = QUANTIZATIONS[
        choose("quantization", opts.quantize or (profile.quantize if profile else "int8"), QUANTIZATIONS)
    ]
    io_type = choose(
        "io type",
        opts.io_type or (profile.io_type if profile and quant.name == profile.quantize else quant.io_types[0]),
        IO_TYPES,
    )
    if profile:
        check_model(
            profile,
            quant.name,
            io_type,
            f"--device {profile.name}",
            "leave out --quantize and --io-type, or choose another device",
        )
    _check(
        io_type in quant.io_types,
        f"--io-type {io_type} does not go with --quantize {quant.name}: use {' or '.join(quant.io_types)}",
    )
    size = opts.input_size or spec.input_size
    weights = opts.weights if opts.weights in ("imagenet", "none") else str(opts.weights)
    _check(
        weights in ("imagenet", "none") or Path(weights).exists(),
        f"--weights {weights}: no such file; use imagenet, none, or a weights/model file",
    )
    _check(size >= spec.min_size, f"--input-size {size} is below {spec.name}'s minimum of {spec.min_size}")
    _check(size <= 1024, f"--input-size {size} is too large: edge exports models up to 1024 pixels")
    _check(0 < opts.val_split < 1, f"--val-split {opts.val_split} must be between 0 and 1 (e.g. 0.2)")
    _check(opts.alpha > 0, f"--alpha {opts.alpha} must be positive (e.g. 1.0, 0.75, 0.35)")
    _check(opts.alpha == 1.0 or spec.alpha, f"--alpha applies to MobileNets only, not {spec.name}")
    _check(opts.epochs >= 0 and opts.fine_tune_epochs >= 0, "--epochs and --fine-tune-epochs cannot be negative")
    _check(opts.epochs + opts.fine_tune_epochs > 0, "nothing to train: give --epochs or --fine-tune-epochs above 0")
    _check(opts.batch_size >= 1, f"--batch-size {opts.batch_size} must be at least 1")
    _check(opts.lr > 0 and math.isfinite(opts.lr), f"--lr {opts.lr} must be a positive number (e.g. 0.001)")
    _check(opts.fine_tune_lr is None or opts.fine_tune_lr > 0, "--fine-tune-lr must be a positive number")
    layers = fine_tune_layers(opts.fine_tune_layers)
    _check(
        opts.prune is None or 0 < opts.prune < 1, f"--prune {opts.prune} must be a sparsity between 0 and 1 (e.g. 0.5)"
    )
    pruning_epochs = opts.fine_tune_epochs if weights != "none" else opts.epochs + opts.fine_tune_epochs
    _check(
        opts.prune is None or pruning_epochs > 0,
        "--prune needs --fine-tune-epochs above 0: it prunes while fine-tuning",
    )
    _check(not opts.qat or quant.name == "int8", "--qat trains for int8: use it with --quantize int8")
    check_max_drop(opts.max_drop)
    _check(
        opts.calibration_images >= MIN_CALIBRATION_IMAGES,
        f"--calibration-images {opts.calibration_images} "
        f"is too few: int8 ranges from under {MIN_CALIBRATION_IMAGES} images do not hold (100-500 is usual)",
    )
    return {
        **distillation(opts),
        "model": spec.name,
        "data": data[0] if len(data) == 1 else tuple(data),
        "out": Path(opts.out) if opts.out is not None else None,
        "val": Path(opts.val) if opts.val is not None else None,
        "weights": weights,
        "input_size": size,
        "quantize": quant.name,
        "io_type": io_type,
        "fallback": check_fallback(opts.fallback),
        "device": profile.name if profile else None,
        "fine_tune_layers": layers,
    }


def distillation(opts: ConvertOptions) -> dict:
    """The teacher's options, checked; their defaults where a teacher is given."""
    temperature, weight = opts.distill_temperature, opts.distill_weight
    if opts.teacher is None:
        given = [
            flag
            for flag, value in (("--distill-temperature", temperature), ("--distill-weight", weight))
            if value is not None
        ]
        _check(not given, f"{' and '.join(given)} without --teacher: give the model to distil from with --teacher")
        return {}
    teacher = Path(opts.teacher)
    _check(
        teacher.suffix.lower() != ".tflite",
        f"--teacher {teacher} is a bare .tflite file, which does not say its classes: give its bundle folder or a "
        "Keras model",
    )
    _check(teacher.exists(), f"--teacher {teacher}: no such file or folder; give a bundle folder or a Keras model file")
    temperature = DISTILL_TEMPERATURE if temperature is None else temperature
    weight = DISTILL_WEIGHT if weight is None else weight
    _check(
        temperature > 0 and math.isfinite(temperature),
        f"--distill-temperature {temperature} must be above 0 (1: the teacher's scores as they are; 2-4 is usual)",
    )
    _check(0 <= weight <= 1, f"--distill-weight {weight} must be between 0 (labels only) and 1 (the teacher only)")
    return {"teacher": teacher, "distill_temperature": float(temperature), "distill_weight": float(weight)}


def fine_tune_layers(value) -> int | str:
    """ "auto", or a count of layers (the CLI gives it as text)."""
    if str(value).strip().lower() == "auto":
        return "auto"
    try:
        layers = int(value)
    except (TypeError, ValueError):
        layers = -1
    _check(
        layers >= 0,
        f"--fine-tune-layers {value}: give auto (chosen from the data) or a count of top "
        "backbone layers to unfreeze (e.g. 30)",
    )
    return layers


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise OptionError(message)
