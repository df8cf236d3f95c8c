"""The bundle: model.tflite + labels.txt + edge.json, the one contract between host and device.

One writer (used by convert) and one reader (used by eval and run), so the schema lives in one place.
`format_version` changes whenever a reader of the old layout would misread the new one.
"""
import gzip
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from edge.errors import EdgeError
from edge.files import check_folder, write_atomic, write_file

FORMAT_VERSION = 1
MANIFEST = "edge.json"
LABELS = "labels.txt"
MODEL = "model.tflite"
EDGETPU_MODEL = "model_edgetpu.tflite"  # the same model compiled by edgetpu_compiler, when the device has one


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


def model_facts(data: bytes, file: str = MODEL) -> dict:
    """File size, compressed size (what pruning shrinks) and sha256 of a model."""
    return {"file": file, "bytes": len(data), "gzip_bytes": len(gzip.compress(data, 9, mtime=0)),
            "sha256": hashlib.sha256(data).hexdigest()}


def check_destination(out) -> Path:
    """Refuse to write over anything that is not an earlier bundle; called before any long work."""
    out = check_folder(out, "--out", "the bundle")
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST).is_file():
        raise EdgeError(f"--out {out} is a non-empty folder that is not a bundle: choose a new or empty folder")
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
    """Read and check a bundle folder; refuse one whose model file does not match its manifest, or whose
    labels.txt names other classes than the manifest."""
    path = Path(path)
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise EdgeError(f"{path} is not a bundle (no {MANIFEST}): give a folder written by 'edge convert'")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise EdgeError(f"{manifest_path} is not valid JSON ({e}): re-run 'edge convert'") from None
    version = manifest.get("format_version") if isinstance(manifest, dict) else None
    if version != FORMAT_VERSION:
        raise EdgeError(f"{manifest_path} has format_version {version!r}; this edge reads {FORMAT_VERSION}: "
                        "upgrade edge or re-run 'edge convert'")
    bundle = Bundle(path, manifest)
    _check_labels(bundle)
    compiled = (manifest.get("edgetpu") or {}).get("model")
    packer = (manifest.get("imx500") or {}).get("packer")
    for file, facts in ((bundle.model_path, manifest["model"]), (bundle.edgetpu_path, compiled),
                        (bundle.imx500_path, packer)):
        if file is None:
            continue
        try:
            data = file.read_bytes()
        except OSError:
            raise EdgeError(f"{file} is missing: copy the whole bundle folder") from None
        if hashlib.sha256(data).hexdigest() != facts["sha256"]:
            raise EdgeError(f"{file} does not match the sha256 in {MANIFEST}: "
                            "the bundle was changed or copied incompletely; copy it again")
    return bundle


def _check_labels(bundle: Bundle) -> None:
    """labels.txt is written from the manifest's labels; if they differ, one was edited, and which one names
    the model's outputs rightly cannot be told."""
    labels, manifest_path, labels_path = bundle.manifest.get("labels"), bundle.path / MANIFEST, bundle.path / LABELS
    if not (isinstance(labels, list) and labels and all(isinstance(label, str) for label in labels)):
        raise EdgeError(f"{manifest_path} has no list of labels: re-run 'edge convert'")
    try:
        listed = [line.strip() for line in labels_path.read_text(encoding="utf-8-sig").splitlines() if line.strip()]
    except OSError:
        raise EdgeError(f"{labels_path} is missing: copy the whole bundle folder") from None
    except UnicodeDecodeError:
        raise EdgeError(f"{labels_path} is not UTF-8 text: copy the bundle again or re-run 'edge convert'") from None
    expected = [label.strip() for label in labels]
    if listed == expected:
        return
    if len(listed) != len(expected):
        what = f"{LABELS} has {len(listed)} names, {MANIFEST} {len(expected)}"
    else:
        line = next(i for i, (a, b) in enumerate(zip(listed, expected)) if a != b)
        what = (f"line {line + 1} of {LABELS} is '{listed[line]}', {MANIFEST} has '{expected[line]}' there"
                + ("; the same names in another order" if sorted(listed) == sorted(expected) else ""))
    raise EdgeError(f"{labels_path} and {manifest_path} disagree on the labels ({what}): make them the same "
                    f"({LABELS} holds {MANIFEST}'s labels, one a line in output order) or re-run 'edge convert'")
