"""Small bundles for tests where the model's bytes are carried, not run: signing, pushing, downloading."""

import hashlib
import json
from pathlib import Path

from edge.bundle import write_bundle

MANIFEST_IN = {
    "labels": ["cat", "dog"],
    "backbone": {"name": "mobilenetv2"},
    "input": {
        "shape": [1, 32, 32, 3],
        "dtype": "uint8",
        "quantization": [1.0, 0],
        "color": "RGB",
        "range": [-1.0, 1.0],
        "resize": {"mode": "stretch", "interpolation": "area"},
    },
}

# How the tests' e2e bundle is trained (tests/conftest.py), and the benchmarks' that stand for it: a narrow
# MobileNetV2 from scratch at 48 px on the digit scans, in about a minute on 2 cores.
E2E_OPTIONS = dict(
    weights="none", input_size=48, alpha=0.35, epochs=10, fine_tune_epochs=0, augment=False, batch_size=16
)


def carried_bundle(out, model: bytes = b"\x1c\x00\x00\x00TFL3" + bytes(range(256)) * 8):
    """A bundle folder whose model file is `model` (2056 bytes by default): its path."""
    return write_bundle(out, model, MANIFEST_IN).path


def rewritten(
    bundle, out, model: bytes | None = None, compiled: bytes | None = None, files: dict | None = None, **entries
):
    """`bundle` written again at `out` as convert writes one, its check images carried along: with `model` (its
    own by default), `compiled` as its Edge TPU model, `entries` set in its manifest, and `files` beside. The
    Bundle."""
    bundle = Path(bundle)
    manifest = json.loads((bundle / "edge.json").read_text())
    kept = {k: v for k, v in manifest.items() if k not in ("format_version", "model")}
    checks = {check["file"]: (bundle / check["file"]).read_bytes() for check in manifest.get("checks") or []}
    model = (bundle / "model.tflite").read_bytes() if model is None else model
    return write_bundle(out, model, {**kept, **entries}, edgetpu=compiled, files={**checks, **(files or {})})


def padded_copy(bundle, out):
    """The same network as `bundle` in a bundle of its own whose model file differs: 16 zero bytes after the
    flatbuffer, which the interpreter never reads (a retrained model, as far as sha256 can tell). Its path."""
    manifest = json.loads((Path(bundle) / "edge.json").read_text())
    model = (Path(bundle) / "model.tflite").read_bytes() + bytes(16)
    fingerprint = {**manifest["fingerprint"], "model_sha256": hashlib.sha256(model).hexdigest()}
    return rewritten(bundle, out, model, fingerprint=fingerprint).path
