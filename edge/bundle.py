"""The bundle: model.tflite + labels.txt + edge.json, the one contract between host and device.

One writer (used by convert) and one reader (used by eval and run), so the schema lives in one place.
`format_version` changes whenever a reader of the old layout would misread the new one.
"""

import gzip
import hashlib
import json
import os
import re
import reprlib
import shutil
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from edge.errors import ModelError, OptionError, finite, whole
from edge.files import check_folder, write_atomic, write_file
from edge.report import DRIFT_STATISTICS
from edge.report import SHA256 as REPORT_SHA256  # the Field below is SHA256

FORMAT_VERSION = 1
MANIFEST = "edge.json"
LABELS = "labels.txt"
MODEL = "model.tflite"
EDGETPU_MODEL = "model_edgetpu.tflite"  # the same model compiled by edgetpu_compiler, when the device has one
COLOR = "RGB"  # the colour order the device feeds a model
RESIZE = {"mode": "stretch", "interpolation": "area"}  # how the bundle's images were resized, and frames are
FINGERPRINT_VERSION = 1  # of the fingerprint block whose shape is checked here (edge.eval.fingerprint writes it)


@dataclass(frozen=True)
class Bundle:
    path: Path
    manifest: dict

    @property
    def labels(self) -> list[str]:
        return self.manifest["labels"]

    @property
    def model_path(self) -> Path:
        return self.path / self.manifest["model"]["file"]

    @property
    def edgetpu_path(self) -> Path | None:
        compiled = (self.manifest.get("edgetpu") or {}).get("model")
        return self.path / compiled["file"] if compiled else None

    @property
    def imx500_path(self) -> Path | None:
        """The network converted for the AI Camera's sensor (packerOut.zip), when the bundle has one."""
        packer = (self.manifest.get("imx500") or {}).get("packer")
        return self.path / packer["file"] if packer else None

    @property
    def files(self) -> list[str]:
        """The names of the files the manifest makes part of the bundle: nothing else in its folder is."""
        imx500 = self.manifest.get("imx500") or {}
        found = [self.model_path, self.edgetpu_path, self.imx500_path]
        checks = [check["file"] for check in self.manifest.get("checks") or []]
        return [MANIFEST, LABELS, *(f.name for f in found if f is not None), *(imx500.get("files") or []), *checks]


def model_facts(data: bytes, file: str = MODEL) -> dict:
    """File size, compressed size (what pruning shrinks) and sha256 of a model."""
    return {
        "file": file,
        "bytes": len(data),
        "gzip_bytes": len(gzip.compress(data, 9, mtime=0)),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def check_destination(out) -> Path:
    """Refuse to write over anything that is not an earlier bundle; called before any long work."""
    out = check_folder(out, "--out", "the bundle")
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST).is_file():
        raise OptionError(f"--out {out} is a non-empty folder that is not a bundle: choose a new or empty folder")
    return out


def write_bundle(out, model: bytes, manifest: dict, edgetpu: bytes | None = None, files: dict | None = None) -> Bundle:
    """Write the bundle atomically: it appears whole at `out`, or not at all. `edgetpu`: the model
    compiled for the Edge TPU, kept beside it; `files`: more files by name (a device converter's output).

    Files go to a hidden sibling folder first and are renamed into place; an earlier bundle at `out`
    is replaced only once the new one is complete.
    """
    out = check_destination(out)
    manifest = {"format_version": FORMAT_VERSION, **manifest, "model": model_facts(model)}
    if edgetpu is not None:
        manifest["edgetpu"] = {**manifest.get("edgetpu", {}), "model": model_facts(edgetpu, EDGETPU_MODEL)}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        write_file(tmp / MODEL, model)
        if edgetpu is not None:
            write_file(tmp / EDGETPU_MODEL, edgetpu)
        for name, data in (files or {}).items():
            write_file(tmp / name, data)
        write_file(tmp / LABELS, "".join(f"{label}\n" for label in manifest["labels"]).encode())
        write_file(tmp / MANIFEST, _manifest_bytes(manifest))
        if out.exists():
            out.rename(old)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not out.exists():
            old.rename(out)
        raise
    shutil.rmtree(old, ignore_errors=True)
    return Bundle(out, manifest)


def update_manifest(bundle: Bundle, entries: dict) -> Bundle:
    """Add or replace top-level entries of a (read and checked) bundle's edge.json, such as a fingerprint measured
    after the conversion; edge.json is replaced whole, atomically."""
    manifest = {**bundle.manifest, **entries}
    write_atomic(bundle.path / MANIFEST, _manifest_bytes(manifest))
    return Bundle(bundle.path, manifest)


def _manifest_bytes(manifest: dict) -> bytes:
    return (json.dumps(manifest, indent=2) + "\n").encode()


def read_bundle(path) -> Bundle:
    """Read and check a bundle folder: its manifest against SCHEMA; refuse one whose model file does not match its
    manifest, or whose labels.txt names other classes than the manifest."""
    path = Path(path)
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise ModelError(f"{path} is not a bundle (no {MANIFEST}): give a folder written by 'edge convert'")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (ValueError, UnicodeDecodeError, RecursionError) as e:  # RecursionError: nested past Python's stack
        raise ModelError(f"{manifest_path} is not valid JSON ({e}): re-run 'edge convert'") from None
    version = manifest.get("format_version") if isinstance(manifest, dict) else None
    if version != FORMAT_VERSION:
        raise ModelError(
            f"{manifest_path} has format_version {reprlib.repr(version)}; this edge reads "
            f"{FORMAT_VERSION}: upgrade edge or re-run 'edge convert'"
        )
    check_manifest(manifest, manifest_path)
    bundle = Bundle(path, manifest)
    _check_labels(bundle)
    compiled = (manifest.get("edgetpu") or {}).get("model")
    packer = (manifest.get("imx500") or {}).get("packer")
    for file, facts in (
        (bundle.model_path, manifest["model"]),
        (bundle.edgetpu_path, compiled),
        (bundle.imx500_path, packer),
    ):
        if file is None or facts is None:
            continue
        try:
            data = file.read_bytes()
        except OSError:
            raise ModelError(f"{file} is missing: copy the whole bundle folder") from None
        if hashlib.sha256(data).hexdigest() != facts["sha256"]:
            raise ModelError(
                f"{file} does not match the sha256 in {MANIFEST}: "
                "the bundle was changed or copied incompletely; copy it again"
            )
    return bundle


# The manifest's schema: every entry the device (and edge package) reads, as nested objects whose leaves are Fields.
# A key ending in "?" may be missing or null; entries not listed are the host's records and are not checked.
@dataclass(frozen=True)
class Field:
    want: str  # what the value must be, as the message says it
    ok: Callable[[object], bool]


MAX_SIDE = 4096  # input height and width: a 4K frame's width; classifiers take 32-600 px, and a float input of
# 4096x4096 is already 200 MB, past what a Pi gives one tensor
MAX_PIXEL = 1e6  # |input range|: models take 0..255, 0..1, -1..1, -128..127; and (high - low) / 255 stays finite
MAX_CHECKS = 8  # check images a bundle carries (edge.checks)
MAX_CLASSES = 100_000  # outputs of a classifier: ImageNet-21k has 21,843
MAX_COUNT = 10**12  # a fingerprint's counts are of images: far below, and within a float64's whole numbers


def _is_name(value) -> bool:
    """A file name in the bundle folder itself: no path, so a manifest cannot point the device elsewhere; one line of
    text (no control characters: a newline would split the one-line error naming it; no lone surrogates, which no
    file system encodes)."""
    return _is_label(value) and value not in (".", "..") and not re.search(r"[/\\]", value)


def _is_label(value) -> bool:
    """One line of UTF-8 text, as labels.txt holds it."""
    return (
        isinstance(value, str)
        and value.strip() != ""
        and not any(unicodedata.category(c) in ("Cc", "Cs") for c in value)
    )


def _is_count(value) -> bool:
    return whole(value, 0, MAX_COUNT)


def _is_histogram(value) -> bool:
    """Bin edges in order (bins are found by searchsorted) and a count for each bin, one more than edges."""
    edges, counts = (value.get("edges"), value.get("counts")) if isinstance(value, dict) else (None, None)
    return (
        isinstance(edges, list)
        and isinstance(counts, list)
        and len(edges) < 100
        and all(finite(e) for e in edges)
        and all(a <= b for a, b in zip(edges, edges[1:], strict=False))
        and len(counts) == len(edges) + 1
        and all(_is_count(c) for c in counts)
    )


def _is_check(value) -> bool:
    """A check image (edge.checks): a file in the bundle folder, its sha256, its class, its scores."""
    return (
        isinstance(value, dict)
        and _is_name(value.get("file"))
        and SHA256.ok(value.get("sha256"))
        and whole(value.get("label"), 0, MAX_CLASSES)
        and isinstance(value.get("scores"), list)
        and 0 < len(value["scores"]) <= MAX_CLASSES
        and all(finite(s) for s in value["scores"])
    )


def _one_of(*values) -> Field:
    return Field(" or ".join(repr(v) for v in values), lambda v: isinstance(v, str) and v in values)


TEXT = Field("text", lambda v: isinstance(v, str))
SHA256 = Field("a sha256 (64 hex digits)", lambda v: isinstance(v, str) and REPORT_SHA256.fullmatch(v) is not None)
FILE = {"file": Field("a file name in the bundle folder (no path)", _is_name), "sha256": SHA256}
SCHEMA = {
    "labels": Field(
        "a list of class names, each one line of text",
        lambda v: isinstance(v, list) and len(v) > 0 and all(_is_label(x) for x in v),
    ),
    "backbone": {"name": TEXT},
    "model": FILE,
    "input": {
        "shape": Field(
            f"[1, height, width, 3] with height and width 1 to {MAX_SIDE}",
            lambda v: (
                isinstance(v, list)
                and len(v) == 4
                and whole(v[0], 1, 1)
                and whole(v[3], 3, 3)
                and whole(v[1], 1, MAX_SIDE)
                and whole(v[2], 1, MAX_SIDE)
            ),
        ),
        "dtype": _one_of("uint8", "int8", "float32"),
        "quantization": Field(
            "[scale >= 0, whole zero point]",
            lambda v: (
                isinstance(v, list) and len(v) == 2 and finite(v[0]) and v[0] >= 0 and whole(v[1], -(2**31), 2**31)
            ),
        ),
        "color": _one_of(COLOR),
        "range": Field(
            f"two numbers low < high, from {-MAX_PIXEL:g} to {MAX_PIXEL:g}",
            lambda v: (
                isinstance(v, list)
                and len(v) == 2
                and all(finite(x) and abs(x) <= MAX_PIXEL for x in v)
                and v[0] < v[1]
            ),
        ),
        "resize": {key: _one_of(value) for key, value in RESIZE.items()},
    },
    "quantization?": {"mode?": TEXT, "io_type?": TEXT},
    "edgetpu?": {"model?": FILE},
    "imx500?": {
        "packer?": FILE,
        "files?": Field(
            "a list of file names in the bundle folder", lambda v: isinstance(v, list) and all(_is_name(x) for x in v)
        ),
    },
    "checks?": Field(
        f"a list of up to {MAX_CHECKS} {{file, sha256, label, scores: one number a label}}",
        lambda v: isinstance(v, list) and len(v) <= MAX_CHECKS and all(_is_check(c) for c in v),
    ),
}


def fingerprint_schema(classes: int) -> dict:
    """What the device reads of a fingerprint (edge.drift, edge.collect) of a model of `classes` outputs."""
    return {
        "model_sha256": SHA256,
        "histograms": {
            name: Field("{edges: ascending numbers, counts: one more count than edges}", _is_histogram)
            for name in DRIFT_STATISTICS[:-1]
        },  # the last is the classes, below
        "classes": Field(
            f"a list of {classes} counts (one a label)",
            lambda v: isinstance(v, list) and len(v) == classes and all(_is_count(c) for c in v),
        ),
    }


def check_manifest(manifest: dict, where) -> None:
    """Hold a manifest to SCHEMA, and its fingerprint, if it has one of this edge's version, to its own."""
    _check(manifest, SCHEMA, "", where, "re-export the bundle with 'edge convert'")
    found = manifest.get("fingerprint")
    if found is not None:
        check_fingerprint(found, len(manifest["labels"]), where, "fingerprint.")


def check_fingerprint(fingerprint, classes: int, where, prefix: str = "") -> None:
    """A fingerprint of another version is left alone: edge.drift refuses it when it is used."""
    fix = "make it again with 'edge eval BUNDLE --data VALIDATION_IMAGES --fingerprint'"
    if not isinstance(fingerprint, dict):
        _refuse(where, prefix.rstrip(".") or "the fingerprint", "an object", fingerprint, fix)
    if fingerprint.get("format_version") == FINGERPRINT_VERSION:
        _check(fingerprint, fingerprint_schema(classes), prefix, where, fix)


def _check(value: dict, schema: dict, prefix: str, where, fix: str) -> None:
    for key, rule in schema.items():
        name, optional = key.removesuffix("?"), key.endswith("?")
        path, item = f"{prefix}{name}", value.get(name)
        want = "an object" if isinstance(rule, dict) else rule.want
        if item is None:
            if optional:
                continue
            raise ModelError(f"{where}: {path} is missing (it must be {want}): {fix}")
        if isinstance(rule, dict):
            if not isinstance(item, dict):
                _refuse(where, path, want, item, fix)
            _check(item, rule, f"{path}.", where, fix)
        elif not rule.ok(item):
            _refuse(where, path, want, item, fix)


def _refuse(where, path: str, want: str, value, fix: str) -> NoReturn:
    raise ModelError(f"{where}: {path} must be {want}, got {_shown(value)}: {fix}")


def _shown(value) -> str:
    """A short one-line picture of a hostile value (a long list, a deep nesting, control characters escaped)."""
    return "null" if value is None else reprlib.repr(value)


def _check_labels(bundle: Bundle) -> None:
    """labels.txt is written from the manifest's labels; if they differ, one was edited, and which one names
    the model's outputs rightly cannot be told."""
    labels, manifest_path, labels_path = bundle.manifest["labels"], bundle.path / MANIFEST, bundle.path / LABELS
    try:
        listed = [line.strip() for line in labels_path.read_text(encoding="utf-8-sig").splitlines() if line.strip()]
    except OSError:
        raise ModelError(f"{labels_path} is missing: copy the whole bundle folder") from None
    except UnicodeDecodeError:
        raise ModelError(f"{labels_path} is not UTF-8 text: copy the bundle again or re-run 'edge convert'") from None
    expected = [label.strip() for label in labels]
    if listed == expected:
        return
    if len(listed) != len(expected):
        what = f"{LABELS} has {len(listed)} names, {MANIFEST} {len(expected)}"
    else:
        line = next(i for i, (a, b) in enumerate(zip(listed, expected, strict=True)) if a != b)
        what = f"line {line + 1} of {LABELS} is '{listed[line]}', {MANIFEST} has '{expected[line]}' there" + (
            "; the same names in another order" if sorted(listed) == sorted(expected) else ""
        )
    raise ModelError(
        f"{labels_path} and {manifest_path} disagree on the labels ({what}): make them the same "
        f"({LABELS} holds {MANIFEST}'s labels, one a line in output order) or re-run 'edge convert'"
    )
