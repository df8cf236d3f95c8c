"""Loading a model to run: a bundle folder or a bare .tflite file -> an interpreter with its class names,
input range, threads and delegate. `edge eval`, `edge bench` and `edge run` all load models here.
"""

import math
import re
from dataclasses import dataclass
from pathlib import Path

from edge.bundle import MANIFEST, read_bundle
from edge.errors import ModelError, OptionError
from edge.interpreter import make_interpreter, n_classes, pick_delegate, resolve_threads, runtime


@dataclass(frozen=True)
class Model:
    path: Path  # the .tflite file that runs
    source: str  # "bundle" or "tflite"
    interpreter: object
    labels: list[str]  # class names in output order
    input_range: tuple[float, float]  # the float range the model expects for pixels 0..255
    threads: int
    delegate: str | None

    def facts(self) -> dict:
        """What a result says about the model it measured."""
        return {
            "model": str(self.path),
            "source": self.source,
            "model_bytes": self.path.stat().st_size,
            "runtime": runtime(self.interpreter),
            "delegate": self.delegate,
            "threads": self.threads,
        }


def load_model(model, labels=None, input_range=None, threads: int | None = None, delegate: str | None = None) -> Model:
    """A bundle folder carries its labels and input range; a bare .tflite file takes them as options.
    On the Edge TPU a bundle's compiled model runs, if it has one."""
    path, names, input_range, source = _locate(Path(model), labels, input_range, delegate)
    threads = resolve_threads(threads)
    delegate = pick_delegate(path.name, delegate)
    interpreter = make_interpreter(path, threads, delegate)
    classes = n_classes(interpreter)
    if names is None:
        raise OptionError(
            f"{path} is a bare .tflite file: give --labels FILE with its {classes} class names, "
            "one a line in output order"
        )
    if len(names) != classes and source == "bundle":
        raise ModelError(
            f"{Path(model) / MANIFEST} names {len(names)} labels but its model has {classes} outputs: "
            "re-run 'edge convert'"
        )
    if len(names) != classes:
        raise OptionError(
            f"--labels has {len(names)} class names but the model has {classes} outputs: "
            "give one name per output, in output order"
        )
    return Model(path, source, interpreter, names, input_range, threads, delegate)


def _locate(path: Path, labels, input_range, delegate) -> tuple[Path, list[str] | None, tuple[float, float], str]:
    """(the file to run, its labels if known, its input range, "bundle" or "tflite"), checked before loading."""
    if path.is_dir():
        _check_bundle_folder(path)
        given = [name for name, value in (("--labels", labels), ("--input-range", input_range)) if value is not None]
        if given:
            raise OptionError(
                f"{path} is a bundle: it carries its labels and input range; {' and '.join(given)} "
                f"{'are' if len(given) > 1 else 'is'} for bare .tflite files: leave "
                f"{'them' if len(given) > 1 else 'it'} out"
            )
        bundle = read_bundle(path)
        lo, hi = bundle.manifest["input"]["range"]
        file = bundle.edgetpu_path if delegate == "edgetpu" and bundle.edgetpu_path else bundle.model_path
        return file, bundle.labels, (float(lo), float(hi)), "bundle"
    if not path.is_file():
        raise ModelError(f"model {path} does not exist: give a bundle folder (with {MANIFEST}) or a .tflite file")
    _check_tflite_file(path)
    lo, hi = parse_range(input_range) if input_range is not None else (0.0, 255.0)
    if not lo < hi:
        raise OptionError(f"--input-range {lo},{hi}: the low end must be below the high end (e.g. -1,1 or 0,1)")
    return path, read_labels(labels) if labels is not None else None, (float(lo), float(hi)), "tflite"


def _check_bundle_folder(path: Path) -> None:
    """A folder given as the model must be a bundle; else say what it holds instead."""
    if (path / MANIFEST).is_file():
        return
    models = sorted(path.glob("*.tflite"))
    bundles = sorted(p for p in path.iterdir() if (p / MANIFEST).is_file())
    if models:
        raise ModelError(
            f"{path} is not a bundle (no {MANIFEST}): give one of its .tflite files, e.g. {models[0]}, "
            "with --labels, or a bundle folder written by 'edge convert'"
        )
    if bundles:
        raise ModelError(
            f"{path} is not a bundle (no {MANIFEST}) but holds {len(bundles)} bundle folder(s): give "
            f"one of them, e.g. {bundles[0]}"
        )
    raise ModelError(
        f"{path} holds no model (no {MANIFEST}, no .tflite file): give a bundle folder written by "
        "'edge convert', or a .tflite file"
    )


def _check_tflite_file(path: Path) -> None:
    """A file given as the model must be a TFLite flatbuffer, which says so in bytes 4-8."""
    if path.name == MANIFEST:
        raise ModelError(f"{path} is a bundle's manifest: give the bundle folder, {path.parent}")
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as e:
        raise ModelError(f"cannot read model {path} ({e.strerror}): check its permissions") from None
    if not head:
        raise ModelError(f"{path} is not a usable TFLite model (it is empty, 0 bytes): copy it again, or re-export it")
    if head[4:8] != b"TFL3":
        raise ModelError(
            f"{path} is not a usable TFLite model (it lacks the TFL3 identifier: not a .tflite file): "
            "give a .tflite file or a bundle folder"
        )


def read_labels(path) -> list[str]:
    """Class names, one a line in output order; also Coral's "0 name" / "0: name" files, whose
    indices may skip (missing ones are named by their index)."""
    path = Path(path)
    try:
        lines = [line.strip() for line in path.read_text(encoding="utf-8-sig").splitlines()]
    except (OSError, UnicodeDecodeError) as e:
        raise OptionError(f"cannot read --labels {path} ({e}): give a text file with one class name a line") from None
    lines = [line for line in lines if line]
    if not lines:
        raise OptionError(f"--labels {path} is empty: give one class name a line, in the model's output order")
    numbered = [m for m in (re.fullmatch(r"(\d+)[:\s]\s*(.+)", line) for line in lines) if m is not None]
    if len(numbered) == len(lines):
        names = {int(m.group(1)): m.group(2).strip() for m in numbered}
        return [names.get(i, str(i)) for i in range(max(names) + 1)]
    return lines


def parse_range(value) -> tuple[float, float]:
    """--input-range as two finite numbers, from "LO,HI" or a pair."""
    try:
        lo, hi = (float(part) for part in (value.split(",") if isinstance(value, str) else value))
    except (ValueError, TypeError):
        lo = hi = float("nan")
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise OptionError(f"--input-range {value}: give two numbers LO,HI, e.g. -1,1 or 0,1 or 0,255")
    return lo, hi
