"""End to end: real digit scans -> edge convert -> a bundle the device-side code reads and agrees with."""

import json
import os
import shutil

import numpy as np
import pytest

from edge.bundle import read_bundle
from edge.eval.evaluate import classify_all
from edge.images import read_rgb
from edge.interpreter import io_facts, make_interpreter
from edge.preprocess import resize
from tests.cli import edge_cli


def test_learns_a_separable_set_and_the_int8_file_agrees(e2e):
    m = e2e.metrics
    assert m["keras"]["accuracy"] >= 0.9
    assert m["tflite"]["accuracy"] >= 0.85
    assert m["agreement"] >= 0.9 and m["n"] == 136
    assert e2e.training["phases"][0]["phase"] == "scratch"


def test_bundle_io_matches_the_manifest(e2e):
    bundle = read_bundle(e2e.bundle)
    interpreter = make_interpreter(bundle.model_path)
    io = io_facts(interpreter)
    assert io["input"] == {k: bundle.manifest["input"][k] for k in ("shape", "dtype", "quantization")}
    assert io["output"] == {k: bundle.manifest["output"][k] for k in ("shape", "dtype", "quantization")}
    assert bundle.manifest["input"]["dtype"] == "uint8" and bundle.manifest["input"]["quantization"] == [1.0, 0]
    assert bundle.labels == ["0", "1", "2", "3"]
    assert (bundle.path / "labels.txt").read_text().split() == bundle.labels


def test_device_path_reproduces_the_manifest_accuracy(e2e, digits):
    """Files -> read_rgb -> resize -> interpreter, as a device would: the same validation accuracy."""
    from edge.converter.datasets import stratified_split
    from edge.folders import scan

    bundle = read_bundle(e2e.bundle)
    folder = scan(digits)
    _, val = stratified_split(folder.labels, 0.2, seed=0)
    interpreter = make_interpreter(bundle.model_path)
    size = bundle.manifest["input"]["shape"][1]
    pred = [
        scores.argmax()
        for scores, _ in classify_all(interpreter, ((resize(read_rgb(folder.paths[i]), size, size), i) for i in val))
    ]
    assert np.mean(np.array(pred) == folder.labels[val]) == pytest.approx(e2e.metrics["tflite"]["accuracy"])


def test_manifest_records_the_contract(e2e):
    m = read_bundle(e2e.bundle).manifest
    assert m["format_version"] == 1 and m["backbone"]["name"] == "mobilenetv2"
    assert m["input"]["color"] == "RGB" and m["input"]["resize"]["mode"] == "stretch"
    assert m["quantization"]["mode"] == "int8" and m["quantization"]["calibration_images"] == 200
    assert m["quantization"]["tool"].startswith("LiteRT Quantizer (ai-edge-quantizer 0.10")
    # all int8, but for what the budget kept float (training differs a little between runs, and so does int8's drop)
    ops, budget = m["quantization"]["operations"], m["quantization"]["budget"]
    assert ops["int8"] > 0 and ops.get("float32", 0) == len(budget["kept"]) and set(ops) <= {"int8", "float32"}
    assert sum(ops.values()) > 60  # every operation of the MobileNetV2 counted
    verdict = budget["verdict"]  # within the budget, or over it by what chance gives on these images
    assert budget["met"] and (budget["drop"] <= 0.01 + 1e-9 or verdict["p_value"] >= 0.05) and not verdict["over"]
    assert verdict["tested"] and verdict["n"] == m["metrics"]["n"] and verdict["says"].startswith("drop ")
    assert m["model"]["bytes"] == os.path.getsize(os.path.join(e2e.bundle, "model.tflite"))
    assert 0 < m["model"]["gzip_bytes"] < m["model"]["bytes"]
    assert m["training"]["options"]["seed"] == 0 and m["training"]["images"] == {
        "train": 544,
        "validation": 136,
        "skipped": [],
    }


@pytest.mark.slow  # pruning and QAT on one model: 140 s on 2 cores
def test_qat_exports_int8(few_digits, tmp_path, fast):
    import edge

    # pruned too: the prune-preserving scheme is the one that needs every layer configured
    s = edge.convert(
        "mobilenetv2",
        few_digits,
        tmp_path / "q",
        qat=True,
        prune=0.5,
        **{**fast, "max_drop": 1.0, "fine_tune_epochs": 1},
    )
    assert s.quantization["qat"] and s.input["dtype"] == "uint8"
    assert s.quantization["tool"].startswith("TFLite converter")  # the one that reads the learned ranges
    assert s.training["phases"][-1]["phase"] == "qat"
    assert s.sparsity["sparsity"] >= 0.45  # QAT kept the pruned zeros
    assert s.metrics["agreement"] >= 0.5


def test_over_budget_says_what_to_do():
    from edge.converter.pipeline import compare, drop_warning, over_budget

    y = np.array([0, 1, 2, 0])
    keras_scores, tflite_scores = np.eye(3)[y], np.eye(3)[[0, 1, 2, 1]]
    m = compare(y, keras_scores, tflite_scores, 3, max_drop=0.01, tested=False)
    assert m["keras"]["accuracy"] == 1.0 and m["tflite"]["accuracy"] == 0.75 and m["agreement"] == 0.75
    assert m["drop_exceeded"]
    chance = compare(y, keras_scores, tflite_scores, 3, max_drop=0.01)  # one image of four: what chance does
    assert not chance["drop_exceeded"] and chance["paired"]["p_value"] > 0.05
    assert "cannot show it is (p = 0.5" in drop_warning(chance, "int8") and "--measured-drop" in drop_warning(
        chance, "int8"
    )
    shown = compare(  # ten of forty: not chance
        np.repeat(y, 10), np.repeat(keras_scores, 10, axis=0), np.repeat(tflite_scores, 10, axis=0), 3, max_drop=0.01
    )
    assert shown["drop_exceeded"] and "as 40 validation images show (p = 0.0" in over_budget(shown, "int8", False, None)
    message = over_budget(m, "int8", qat=False, search=None)
    assert "0.2500 below the Keras model's 1.0000" in message and "nothing written" in message
    assert "--qat" in message and "--accept-drop" in message
    assert "--qat" not in over_budget(m, "int8", qat=True, search=None)
    assert "--qat" not in over_budget(m, "float16", qat=False, search=None)
    assert "written because of --accept-drop" in drop_warning(m, "int8")
    within = compare(y, keras_scores, tflite_scores, 3, max_drop=0.3)
    assert not within["drop_exceeded"] and drop_warning(within, "int8") is None


@pytest.mark.slow  # a device's variant of edge convert: the e2e fixture runs it end to end
def test_cli_convert_for_a_device_json(few_digits, digits, tmp_path):
    """`edge convert --device coral-usb --json`: the device's quantization, the bundle written without the
    compiler (not installable here) and how to compile it later; JSON alone on stdout. Trained on two
    folders, the second (as `edge frames export` writes) adding to a class and bringing a new one."""
    field = tmp_path / "field"
    for digit, n in (("1", 4), ("2", 16)):
        (field / digit).mkdir(parents=True)
        for path in sorted((digits / digit).iterdir())[:n]:
            shutil.copy(path, field / digit / path.name)
    out = tmp_path / "coral"
    r = edge_cli(
        "convert",
        "--model",
        "mobilenetv2",
        "--data",
        few_digits,
        "--data",
        field,
        "--out",
        out,
        "--weights",
        "none",
        "--input-size",
        32,
        "--alpha",
        0.35,
        "--epochs",
        1,
        "--fine-tune-epochs",
        0,
        "--no-augment",
        "--device",
        "coral-usb",
        "--json",
        "--allow-weak",
    )  # one epoch: plumbing, not learning
    assert r.returncode == 0, r.stderr[-2000:]
    summary = json.loads(r.stdout)
    assert read_bundle(out).manifest["model"]["sha256"] == summary["model"]["sha256"]
    assert "reading images" in r.stderr  # progress goes to stderr, JSON alone to stdout
    assert "failed call to cuInit" not in r.stderr  # TensorFlow's chatter on a machine without a GPU
    assert summary["device"] == "coral-usb" and summary["input"]["dtype"] == "uint8"
    assert read_bundle(out).labels == ["0", "1", "2", "7"]
    assert read_bundle(out).manifest["training"]["options"]["data"] == [str(few_digits), str(field)]
    assert (summary["quantization"]["mode"], summary["quantization"]["io_type"]) == ("int8", "uint8")
    if shutil.which("edgetpu_compiler") is None:  # x86-64 Debian/Ubuntu only; not installable here
        assert summary["edgetpu"]["compiled"] is False and read_bundle(out).edgetpu_path is None
        [warning] = summary["edgetpu"]["warnings"]  # kept in its record: a later compile replaces it
        assert "edgetpu_compiler is not on PATH" in warning and f"edge devices compile {out}" in warning


def test_cli_lists_models():
    r = edge_cli("convert", "--list-models")
    assert r.returncode == 0 and "xception" in r.stdout and "caffe" in r.stdout


def _bad_data(tmp_path, few_digits):
    """Folders that must be refused, each with what the error must say."""
    cases = {}
    cases["missing"] = (tmp_path / "nope", "does not exist")
    (tmp_path / "empty").mkdir()
    cases["empty"] = (tmp_path / "empty", "no class sub-folders")
    shutil.copytree(few_digits / "0", tmp_path / "single" / "0")
    cases["single"] = (tmp_path / "single", "one class")
    shutil.copytree(few_digits, tmp_path / "corrupt")
    for path in (tmp_path / "corrupt" / "7").iterdir():
        path.write_bytes(b"\x89PNG broken")
    cases["corrupt"] = (tmp_path / "corrupt", "too few readable images")
    return cases


@pytest.mark.parametrize("case", ["missing", "empty", "single", "corrupt"])
def test_cli_bad_data_is_one_line_exit_2_and_writes_nothing(case, tmp_path, few_digits):
    data, message = _bad_data(tmp_path, few_digits)[case]
    r = edge_cli("convert", "--data", data, "--out", tmp_path / "out", "--weights", "none")
    assert r.returncode == 2
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and message in last and r.stderr.count("error") == 1
    assert "Traceback" not in r.stderr and not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "args,message",
    [
        (["--model", "xceptoin"], "did you mean xception"),
        (["--val-split", "2"], "between 0 and 1"),
        (["--epochs", "many"], "'many' is not a valid integer"),
        (["--quantize", "float16", "--io-type", "uint8"], "does not go with"),
        (["--model", "xception", "--input-size", "32"], "minimum of 71"),
        (["--prune", "7"], "sparsity between 0 and 1"),
        (["--weights", "missing.h5"], "no such file"),
    ],
)
def test_cli_nonsense_options_are_one_line_exit_2(args, message, tmp_path, few_digits):
    r = edge_cli("convert", "--data", few_digits, "--out", tmp_path / "out", *args)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists()


def test_cli_refuses_to_overwrite_a_folder_that_is_not_a_bundle(tmp_path, few_digits):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.txt").write_text("keep me")
    r = edge_cli("convert", "--data", few_digits, "--out", tmp_path / "mine", "--weights", "none")
    assert r.returncode == 2 and "not a bundle" in r.stderr
    assert (tmp_path / "mine" / "thesis.txt").read_text() == "keep me"


def test_cli_refuses_a_model_no_better_than_guessing(folder, tmp_path):
    """Trained at a learning rate too small to move it, the model is no better than always answering one
    class: nothing written, one line saying so and what to try. (Images of no class without a --teacher are
    left out, and the log says so.)"""
    (folder / "_unlabelled").mkdir()
    shutil.copy(next((folder / "0").iterdir()), folder / "_unlabelled" / "frame.png")
    out = tmp_path / "weak"
    r = edge_cli(
        "convert",
        "--data",
        folder,
        "--out",
        out,
        "--weights",
        "none",
        "--input-size",
        32,
        "--alpha",
        0.35,
        "--epochs",
        1,
        "--fine-tune-epochs",
        0,
        "--no-augment",
        "--lr",
        1e-9,
    )
    assert r.returncode == 2 and not out.exists(), r.stderr[-2000:]
    line = r.stderr.strip().splitlines()[-1]
    assert line.startswith("error: the model is no better than guessing:") and "on 9 validation images" in line
    assert "--weights imagenet" in line and "--allow-weak" in line
    assert "1 image(s) in _unlabelled/ left out: only a --teacher labels them" in r.stderr


def test_guessing_baseline_accounts_for_the_number_of_images():
    from edge.eval.baseline import against_guessing, tail

    assert tail(9, 9, 1 / 3) == pytest.approx((1 / 3) ** 9)
    assert tail(0, 5, 0.5) == 1.0 and tail(3, 4, 0.5) == pytest.approx(5 / 16)
    y = np.array([0, 1, 2] * 3)
    assert not against_guessing(y, np.ones(9, bool), 3)["weak"]  # 9 of 9: p = 5e-5
    assert against_guessing(y, np.arange(9) < 6, 3)["weak"]  # 6 of 9 could be luck (p = 0.04)
    many = np.array([0, 1, 2, 3] * 150)
    verdict = against_guessing(many, np.arange(600) < 240, 4)  # 40% of 600, where guessing gets 25%
    assert not verdict["weak"] and verdict["majority_accuracy"] == 0.25 and verdict["p_value"] < 1e-10
    skewed = np.array([0] * 80 + [1] * 20)
    assert against_guessing(skewed, skewed == 0, 2)["weak"]  # always class 0 is right 80%: that is the baseline
