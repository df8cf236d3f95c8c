"""edge.json as a hostile file: the one reader (edge.bundle.read_bundle) holds every field the device reads to the
schema beside it, and refuses a tampered or absurd manifest in one line naming the field; what it lets through, the
device can use (its input range, its fingerprint for drift and for collecting) without a traceback."""

import copy
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.bundle import FINGERPRINT_VERSION, MANIFEST, read_bundle
from edge.collect import margin
from edge.drift import Drift, find
from edge.errors import EdgeError
from tests.cli import edge_cli
from tests.hostile import HOSTILE, hostile_json

DELETE = object()  # the key taken out
BUNDLE_FIX = "re-export the bundle with 'edge convert'"


def tampered(manifest: dict, path: str, value) -> dict:
    """A copy of `manifest` with the entry at the dotted `path` set to `value` (or taken out); parents that are
    missing or not objects become objects."""
    manifest = copy.deepcopy(manifest)
    *parents, last = path.split(".")
    node = manifest
    for key in parents:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    if value is DELETE:
        node.pop(last, None)
    else:
        node[last] = value
    return manifest


@pytest.fixture(scope="module")
def original(e2e) -> dict:
    return json.loads((Path(e2e.bundle) / MANIFEST).read_text())


@pytest.fixture(scope="module")
def bundle(e2e, tmp_path_factory) -> Path:
    """A copy of the real bundle whose edge.json the tests write over."""
    return Path(shutil.copytree(e2e.bundle, tmp_path_factory.mktemp("tampered") / "b"))


def write(bundle: Path, manifest) -> None:
    (bundle / MANIFEST).write_text(hostile_json(manifest))


@pytest.mark.parametrize(
    "path,value,message",
    [
        # the ones the field reported
        ("input.range", "abc", "input.range must be two numbers low < high, from -1e+06 to 1e+06, got 'abc'"),
        ("input", DELETE, "input is missing (it must be an object)"),
        ("model", ["model.tflite"], "model must be an object, got ['model.tflite']"),
        ("fingerprint.histograms", 3, "fingerprint.histograms must be an object, got 3"),
        ("input.range", [1, 1], "input.range must be two numbers low < high"),
        ("input.resize.mode", "crop", "input.resize.mode must be 'stretch', got 'crop'"),
        ("input.color", "BGR", "input.color must be 'RGB', got 'BGR'"),
        (
            "input.shape",
            [1, 100000, 100000, 3],
            "input.shape must be [1, height, width, 3] with height and width 1 to 4096, got [1, 100000, 100000, 3]",
        ),
        # and their kin
        ("input.range", [0, float("inf")], "input.range must be two numbers"),
        ("input.range", [True, 2], "input.range must be two numbers"),
        ("input.shape", [1, 48, 48], "input.shape must be [1, height, width, 3]"),
        ("input.dtype", "complex128", "input.dtype must be 'uint8' or 'int8' or 'float32', got 'complex128'"),
        ("input.resize", None, "input.resize is missing (it must be an object)"),
        ("model.file", "../../../etc/passwd", "model.file must be a file name in the bundle folder"),
        ("model.file", "\n", "model.file must be a file name in the bundle folder"),  # one line, as errors are
        ("model.file", "\ud800", "model.file must be a file name in the bundle folder"),  # no file system holds it
        ("model.sha256", 7, "model.sha256 must be a sha256 (64 hex digits), got 7"),
        ("labels", "0 1 2 3", "labels must be a list of class names, each one line of text"),
        ("labels", ["0", "1\n2", "3"], "labels must be a list of class names, each one line of text"),
        ("backbone", "mobilenetv2", "backbone must be an object"),
        ("quantization", ["int8"], "quantization must be an object"),
        ("edgetpu", "yes", "edgetpu must be an object"),
        ("edgetpu.model", {"file": "/etc/shadow", "sha256": "0" * 64}, "edgetpu.model.file must be a file name"),
        ("imx500.packer", {"file": "packerOut.zip"}, "imx500.packer.sha256 is missing"),
        ("fingerprint", [], "fingerprint must be an object, got []"),
        ("fingerprint.model_sha256", None, "fingerprint.model_sha256 is missing"),
        ("fingerprint.classes", [1, 2], "fingerprint.classes must be a list of 4 counts (one a label), got [1, 2]"),
        (
            "fingerprint.histograms.top1",
            {"edges": [0.9, 0.5], "counts": [1, 2, 3]},
            "fingerprint.histograms.top1 must be {edges: ascending numbers, counts: one more count than edges}",
        ),
        ("fingerprint.histograms.margin.counts", [1], "fingerprint.histograms.margin must be {edges:"),
        ("fingerprint.histograms.entropy.counts", [0, 10**400, 1], "fingerprint.histograms.entropy must be"),
        ("fingerprint.histograms.entropy", DELETE, "fingerprint.histograms.entropy is missing"),
    ],
)
def test_a_tampered_manifest_is_refused_in_one_line_naming_the_field(bundle, original, path, value, message):
    write(bundle, tampered(original, path, value))
    with pytest.raises(EdgeError) as e:
        read_bundle(bundle)
    text = str(e.value)
    assert text.startswith(f"{bundle / MANIFEST}: {message}") and "\n" not in text, text
    fix = "--fingerprint" if path.startswith("fingerprint") else BUNDLE_FIX
    assert fix in text.rsplit(": ", 1)[1], text  # and says what to do


def test_what_is_not_json_nor_an_object_is_refused(bundle, original):
    for text, message in (
        ("[" * 100_000, "is not valid JSON"),
        ('{"format_version": 1, "labels": ' + "[" * 5000, "is not valid JSON"),
        ("[1]", "has format_version None"),
    ):
        (bundle / MANIFEST).write_text(text)
        with pytest.raises(EdgeError, match=message):
            read_bundle(bundle)


def test_a_fingerprint_of_another_version_is_left_to_drift(bundle, original):
    """Its shape is another edge's: the bundle still evaluates, and edge run's drift refuses it (tests/test_drift)."""
    other = {"format_version": FINGERPRINT_VERSION + 1, "histograms": "a newer layout"}
    write(bundle, tampered(original, "fingerprint", other))
    assert read_bundle(bundle).manifest["fingerprint"] == other


def key_paths(manifest: dict, prefix: str = "") -> list[str]:
    """Every key path of the manifest, down to what is not an object (records only the host reads, whole)."""
    paths = []
    for key, value in manifest.items():
        path = f"{prefix}{key}"
        paths.append(path)
        if isinstance(value, dict) and key not in ("training", "metrics", "budget", "quantized_from"):
            paths += key_paths(value, f"{path}.")
    return paths


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)
NEAR = st.lists(st.integers(-2, 5000) | st.floats(-300, 300) | st.just("x"), min_size=0, max_size=5)
# where the schema has entries that the real bundle leaves null, or has nothing at all
EXTRA_PATHS = ["edgetpu.model", "edgetpu.model.file", "imx500.packer", "imx500.packer.sha256", "imx500.files"]


@pytest.fixture(scope="module")
def paths(original) -> list[str]:
    return key_paths(original) + EXTRA_PATHS


@settings(max_examples=250, deadline=None, database=None)
@given(data=st.data())
def test_any_value_at_any_key_is_refused_by_the_reader_or_usable(bundle, original, paths, data):
    path = data.draw(st.sampled_from(paths), label="path")
    value = data.draw(st.one_of(JSON, HOSTILE, NEAR, st.just(DELETE)), label="value")
    write(bundle, tampered(original, path, value))
    try:
        manifest = read_bundle(bundle).manifest
    except EdgeError as e:
        assert "\n" not in str(e)
        return
    lo, hi = (float(x) for x in manifest["input"]["range"])  # as load_model takes it
    assert lo < hi
    try:
        fingerprint = find(bundle, len(manifest["labels"]))
    except EdgeError:  # another version, or another model's: drift refuses it
        return
    margin(fingerprint)
    if fingerprint:
        drift = Drift(fingerprint)
        counts = drift.counts()
        scores = np.eye(len(manifest["labels"]), dtype=np.float32)
        for row in (*scores, *scores):
            counts.add(row)
        drift.judge(counts)


@pytest.fixture(scope="module")
def scans(digits) -> Path:
    return Path(digits) / "1"


@pytest.mark.parametrize(
    "command,path,value",
    [
        ("run", "input.range", "abc"),
        ("run", "fingerprint.histograms", 3),
        ("eval", "model", ["model.tflite"]),
        ("eval", "input.shape", [1, 100000, 100000, 3]),
    ],
)
def test_edge_run_and_eval_refuse_a_tampered_manifest_in_one_line(
    e2e, digits, tmp_path, original, command, path, value
):
    bundle = Path(shutil.copytree(e2e.bundle, tmp_path / "b"))
    write(bundle, tampered(original, path, value))
    where = ["--source", Path(digits) / "1", "--max-frames", "2"] if command == "run" else ["--data", digits]
    r = edge_cli(command, bundle, *where)
    assert r.returncode == 2 and r.stderr.startswith(f"error: {bundle / MANIFEST}: {path} "), r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
