"""Options of `edge convert`, checked against their tables before any TensorFlow is imported."""
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from edge.converter.backbones import get_backbone
from edge.converter.quantize import IO_TYPES, MIN_CALIBRATION_IMAGES, QUANTIZATIONS
from edge.converter.selective import check_fallback, check_max_drop
from edge.devices.profiles import check_model, get_profile
from edge.errors import EdgeError, choose
from edge.folders import DATA_REQUIRED


@dataclass
class ConvertOptions:
    model: str = "mobilenetv2"  # a backbone (edge.converter.backbones)
    data: Path | tuple[Path, ...] | None = None  # one sub-folder of images per class; several: classes merged by name
    out: Path | None = None  # the bundle folder; None when nothing is written (edge bench)
    val: Path | None = None
    val_split: float = 0.2
    seed: int = 0
    weights: str = "imagenet"  # imagenet | none | PATH
    input_size: int | None = None  # None: the backbone's default
    alpha: float = 1.0
    epochs: int = 5  # head on the frozen backbone (or everything, with weights none)
    fine_tune_epochs: int = 5
    fine_tune_layers: int | str = "auto"  # top backbone layers to unfreeze; auto: from the data (edge.converter.finetune)
    lr: float = 1e-3
    fine_tune_lr: float | None = None  # None: from the data with auto layers, else lr / 10
    batch_size: int = 32
    augment: bool = True
    flip: bool = True  # mirror images while augmenting: not for digits, text, signs
    prune: float | None = None  # target sparsity
    quantize: str | None = None  # None: the --device profile's, else int8
    io_type: str | None = None  # None: uint8 for int8, float32 otherwise
    device: str | None = None  # an edge.devices.profiles name: its quantization, and its compiler
    qat: bool = False
    max_drop: float = 0.01  # below the Keras model's validation accuracy; int8 keeps operations higher to hold it
    accept_drop: bool = False  # write the bundle even when nothing holds max_drop
    allow_weak: bool = False  # write a model no better than guessing (edge.eval.baseline)
    fallback: str = "float"  # what int8 keeps higher operations in (edge.converter.quantize.FALLBACKS)
    calibration_images: int = 200

    def resolved(self) -> "ConvertOptions":
        """A copy with defaults filled in from the tables; raises EdgeError on nonsense."""
        data = [Path(d) for d in (self.data if isinstance(self.data, (list, tuple)) else [self.data] * (
            self.data is not None))]
        _check(bool(data), DATA_REQUIRED)
        spec = get_backbone(self.model)
        profile = get_profile(self.device) if self.device else None
        quant = QUANTIZATIONS[choose("quantization", self.quantize or (profile.quantize if profile else "int8"),
                                     QUANTIZATIONS)]
        io_type = choose("io type", self.io_type or (profile.io_type if profile and quant.name == profile.quantize
                                                     else quant.io_types[0]), IO_TYPES)
        if profile:
            check_model(profile, quant.name, io_type, f"--device {profile.name}",
                        "leave out --quantize and --io-type, or choose another device")
        if io_type not in quant.io_types:
            raise EdgeError(f"--io-type {io_type} does not go with --quantize {quant.name}: "
                            f"use {' or '.join(quant.io_types)}")
        size = self.input_size or spec.input_size
        weights = self.weights if self.weights in ("imagenet", "none") else str(self.weights)
        if weights not in ("imagenet", "none") and not Path(weights).exists():
            raise EdgeError(f"--weights {weights}: no such file; use imagenet, none, or a weights/model file")
        _check(size >= spec.min_size, f"--input-size {size} is below {spec.name}'s minimum of {spec.min_size}")
        _check(size <= 1024, f"--input-size {size} is too large: edge exports models up to 1024 pixels")
        _check(0 < self.val_split < 1, f"--val-split {self.val_split} must be between 0 and 1 (e.g. 0.2)")
        _check(self.alpha > 0, f"--alpha {self.alpha} must be positive (e.g. 1.0, 0.75, 0.35)")
        _check(self.alpha == 1.0 or spec.alpha, f"--alpha applies to MobileNets only, not {spec.name}")
        _check(self.epochs >= 0 and self.fine_tune_epochs >= 0, "--epochs and --fine-tune-epochs cannot be negative")
        _check(self.epochs + self.fine_tune_epochs > 0, "nothing to train: give --epochs or --fine-tune-epochs above 0")
        _check(self.batch_size >= 1, f"--batch-size {self.batch_size} must be at least 1")
        _check(self.lr > 0 and math.isfinite(self.lr), f"--lr {self.lr} must be a positive number (e.g. 0.001)")
        _check(self.fine_tune_lr is None or self.fine_tune_lr > 0, "--fine-tune-lr must be a positive number")
        layers = fine_tune_layers(self.fine_tune_layers)
        _check(self.prune is None or 0 < self.prune < 1, f"--prune {self.prune} must be a sparsity between 0 and 1 (e.g. 0.5)")
        pruning_epochs = self.fine_tune_epochs if weights != "none" else self.epochs + self.fine_tune_epochs
        _check(self.prune is None or pruning_epochs > 0, "--prune needs --fine-tune-epochs above 0: it prunes while fine-tuning")
        _check(not self.qat or quant.name == "int8", "--qat trains for int8: use it with --quantize int8")
        check_max_drop(self.max_drop)
        _check(self.calibration_images >= MIN_CALIBRATION_IMAGES, f"--calibration-images {self.calibration_images} "
               f"is too few: int8 ranges from under {MIN_CALIBRATION_IMAGES} images do not hold (100-500 is usual)")
        return ConvertOptions(**{
            **asdict(self), "model": spec.name, "data": data[0] if len(data) == 1 else tuple(data),
            "out": Path(self.out) if self.out is not None else None,
            "val": Path(self.val) if self.val is not None else None, "weights": weights, "input_size": size,
            "quantize": quant.name, "io_type": io_type, "fallback": check_fallback(self.fallback), "device": profile.name if profile else None,
            "fine_tune_layers": layers})

    @property
    def tuning_lr(self) -> float:
        """The learning rate of phases after the first that no rule chooses for (QAT, pruning, given layers)."""
        return self.fine_tune_lr or self.lr / 10


def fine_tune_layers(value) -> int | str:
    """"auto", or a count of layers (the CLI gives it as text)."""
    if str(value).strip().lower() == "auto":
        return "auto"
    try:
        layers = int(value)
    except (TypeError, ValueError):
        layers = -1
    _check(layers >= 0, f"--fine-tune-layers {value}: give auto (chosen from the data) or a count of top "
                        "backbone layers to unfreeze (e.g. 30)")
    return layers


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise EdgeError(message)
