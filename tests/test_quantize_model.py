"""`edge quantize`: a float model brought by the user (a bare .tflite, or a float32 bundle) to an int8 bundle
within --max-drop, on a device-like install without TensorFlow; and its refusals."""

import json
import shutil

import pytest

import edge
from edge.bundle import read_bundle
from edge.checks import run_checks
from edge.errors import EdgeError
from edge.model import load_model
from tests.cli import edge_cli, edge_cli_without_tensorflow


def test_cli_quantizes_a_bare_tflite_within_budget_without_tensorflow(cnn_files, digits, tmp_path):
    out = tmp_path / "q"
    r = edge_cli_without_tensorflow(
        "quantize",
        cnn_files / "branched.tflite",  # equalization cannot join its outlier: the search does
        "--data",
        digits,
        "--labels",
        cnn_files / "labels.txt",
        "--max-drop",
        "0.02",
        "--out",
        out,
        "--json",
        tmp_path / "q.json",
        "--plot",
        tmp_path / "errors.png",
    )
    assert r.returncode == 0, r.stderr[-2000:]
    summary = json.loads((tmp_path / "q.json").read_text())
    budget = read_bundle(out).manifest["quantization"]["budget"]
    assert budget == summary["quantization"]["budget"]
    assert budget["met"] and budget["drop"] <= 0.02 < budget["plain_int8"]["drop"]
    # nothing to equalize (the outlier's convolution has two readers): bias correction is tried, then the search
    # keeps the outlier's convolution float
    prepared = budget["prepared"]
    assert prepared["equalized_pairs"] == [] and prepared["note"].startswith("no pair of operations to equalize")
    assert [t["start"] for t in prepared["tried"]] == ["plain int8", "bias corrected"]
    kept = [(k["index"], k["type"], k["as"]) for k in budget["kept"]]
    assert (0, "CONV_2D", "float") in kept and len(kept) < 7
    assert budget["extra_bytes"] > 0 and budget["latency_ms"]["plain_int8_p50"] > 0 and budget["seconds"] > 0
    assert [row["kept"] for row in summary["per_operation"]][0] == "float"
    assert summary["quantization"]["operations"]["float32"] == len(kept)
    assert summary["input"]["dtype"] == "uint8" and summary["input"]["quantization"] == [1.0, 0]
    assert f"kept       {len(kept)} of 7 operations float: 0 CONV_2D" in r.stdout
    assert "prepared   no pair of operations to equalize" in r.stdout
    assert (tmp_path / "errors.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the bundle runs as any other: edge eval on the device path gets the accuracy the manifest records
    report = edge.evaluate(out, digits).report
    assert report.accuracy == pytest.approx(summary["metrics"]["tflite"]["accuracy"])
    # and it carries the fingerprint of its own scores on --data, for drift on a device
    fingerprint = read_bundle(out).manifest["fingerprint"]
    assert fingerprint["model_sha256"] == summary["model"]["sha256"] and fingerprint["n"] == summary["metrics"]["n"]


def test_over_budget_writes_nothing_unless_accepted(cnn_files, digits, tmp_path):
    out = tmp_path / "q"
    args = (
        "quantize",
        cnn_files / "branched.tflite",
        "--data",
        digits,
        "--labels",
        cnn_files / "labels.txt",
        "--fallback",
        "int16",
        "--max-drop",
        "0",
        "--measured-drop",
        "--out",
        out,
    )  # no image may be lost, and even with every operation int16 some are
    r = edge_cli(*args)
    assert r.returncode == 2 and not out.exists()
    [line] = r.stderr.strip().splitlines()[-1:]
    assert "below the float model's" in line and "nothing written" in line and "--accept-drop" in line
    assert "Traceback" not in r.stderr
    summary = edge.quantize(
        cnn_files / "branched.tflite",
        digits,
        out,
        labels=cnn_files / "labels.txt",
        fallback="int16",
        max_drop=0.0,
        mcnemar=False,
        accept_drop=True,
    )
    assert not summary.quantization["budget"]["met"] and read_bundle(out).manifest["metrics"]["drop_exceeded"]
    assert any("written because of --accept-drop" in w for w in summary.warnings)


def test_a_bare_file_without_a_signature_is_quantized(cnn_files, digits, tmp_path):
    """A .tflite from elsewhere may carry no signature (the quantizer calibrates through one): it gets one."""
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray((cnn_files / "control.tflite").read_bytes()))
    model.signatureDefs = []
    bare = tmp_path / "bare.tflite"
    bare.write_bytes(bytes(flatbuffer_utils.convert_object_to_bytearray(model)))
    s = edge.quantize(bare, digits, tmp_path / "q", labels=cnn_files / "labels.txt", max_drop=0.05)
    assert s.quantization["budget"]["met"] and s.quantization["operations"].get("int8", 0) >= 4


@pytest.mark.slow  # a bundle's variant of edge quantize: the bare file's test runs it end to end
def test_quantizes_a_float32_bundle(few_digits, tmp_path, fast):
    float_bundle = tmp_path / "float"
    edge.convert("mobilenetv2", few_digits, float_bundle, quantize="float32", **fast)
    s = edge.quantize(float_bundle, few_digits, tmp_path / "int8", max_drop=1.0, calibration_images=16)
    assert s.backbone == read_bundle(float_bundle).manifest["backbone"]
    assert s.labels == ["0", "1", "7"] and s.input["range"] == [0, 255]
    assert s.quantization["tool"].startswith("LiteRT Quantizer") and s.quantization["calibration_images"] == 16
    assert s.output["activation"] == "softmax" and s.quantized_from["source"] == "bundle"
    assert sorted(c["label"] for c in s.checks) == [0, 1, 2]  # a device that follows checks it on them
    run_checks(load_model(s.bundle, threads=1), read_bundle(s.bundle))


@pytest.fixture
def unknown_class(digits, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(digits / "1", data / "1")
    shutil.copytree(digits / "2", data / "seven")
    return data


@pytest.fixture
def three_images(digits, tmp_path):
    folder = tmp_path / "calibration"
    folder.mkdir()
    for path in sorted((digits / "1").iterdir())[:3]:
        shutil.copy(path, folder)
    return folder


@pytest.mark.parametrize(
    "case,message",
    [
        ("quantized", "is already quantized"),
        ("max_drop_high", "max_drop=1.5 must be between 0 and 1"),
        ("max_drop_low", "max_drop=-0.1 must be between 0 and 1"),
        ("fallback", "did you mean int16"),
        ("unknown_class", "class folders the model does not know: seven"),
        ("few_calibration", "3 images are too few to calibrate int8"),
        ("calibration_count", "calibration_images=5 is too few"),
        ("no_out", "out is required"),
        ("no_labels", "give --labels FILE"),
        ("same_out", "would overwrite the model it quantizes"),
    ],
)
def test_bad_input_is_refused_before_writing(case, message, cnn_files, digits, e2e, tmp_path, request):
    model, labels = cnn_files / "outlier.tflite", cnn_files / "labels.txt"
    args = {"out": tmp_path / "q", "labels": labels}
    data = digits
    if case == "quantized":
        model, args = e2e.bundle, {"out": tmp_path / "q"}
    elif case == "max_drop_high":
        args["max_drop"] = 1.5
    elif case == "max_drop_low":
        args["max_drop"] = -0.1
    elif case == "fallback":
        args["fallback"] = "int61"
    elif case == "unknown_class":
        data = request.getfixturevalue("unknown_class")
    elif case == "few_calibration":
        args["calibration"] = request.getfixturevalue("three_images")
    elif case == "calibration_count":
        args["calibration_images"] = 5
    elif case == "no_out":
        args["out"] = None
    elif case == "no_labels":
        del args["labels"]
    elif case == "same_out":
        model, args = e2e.bundle, {"out": e2e.bundle}
    before = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    with pytest.raises(EdgeError, match=message):
        edge.quantize(model, data, **args)
    assert not (tmp_path / "q").exists() and before == {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}


def test_cli_bad_input_is_one_line_exit_2(cnn_files, digits, tmp_path):
    r = edge_cli(
        "quantize",
        cnn_files / "outlier.tflite",
        "--data",
        digits,
        "--labels",
        cnn_files / "labels.txt",
        "--out",
        tmp_path / "q",
        "--max-drop",
        "2",
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert (
        r.stderr.strip().splitlines()[-1] == "error: --max-drop 2.0 must be between 0 and 1: the accuracy int8 "
        "may lose, e.g. 0.01"
    )
