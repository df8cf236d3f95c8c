"""`edge import`: a classifier trained here in PyTorch, on real digit scans, brought into a bundle: its preprocessing
inside the graph, float agreement with PyTorch, int8 within the budget on scans the search never saw; and the
models and options it refuses."""

import json

import numpy as np
import pytest

import edge
from edge.bundle import read_bundle
from edge.converter.datasets import load_images
from edge.converter.demo import write_digits
from edge.devices.toolchains import ROOT_VARIABLE
from edge.errors import EdgeError
from edge.folders import scan
from edge.model import load_model
from tests import torch_models
from tests.cli import edge_cli, edge_cli_without_tensorflow

torch = pytest.importorskip("torch")  # the [import] extra: the README's test command installs it


@pytest.fixture(scope="module")
def scans(tmp_path_factory):
    """Digit scans in three disjoint sets: PyTorch trains on one, edge import checks and calibrates on one,
    the last is for edge eval alone."""
    root = tmp_path_factory.mktemp("scans")
    return {
        "train": write_digits(root / "train", per_class=100, size=48),
        "val": write_digits(root / "val", per_class=40, size=48, skip=100),
        "test": write_digits(root / "test", per_class=None, size=48, skip=140),
    }


@pytest.fixture(scope="module")
def trained(scans, tmp_path_factory):
    """The classifier (0.94-0.95 on the test scans, seeds 0-1, measured before the training helper was shared),
    saved both ways, and its labels file."""
    model, classes = torch_models.train(scans["train"])
    root = tmp_path_factory.mktemp("torch")
    return {
        "model": model,
        "classes": classes,
        "program": torch_models.save_program(model, root / "digits.pt2"),
        "script": torch_models.save_script(model, root / "digits.pt"),
        "labels": torch_models.labels_file(root / "labels.txt", classes),
        "root": root,
    }


def torch_accuracy(model, folder) -> float:
    """PyTorch's own accuracy on a folder, preprocessed as it was trained."""
    found = scan(folder)
    images, kept, _ = load_images(found.paths, 32)
    x = torch.from_numpy(images).float() / 255
    x = ((x - torch.tensor(torch_models.MEAN)) / torch.tensor(torch_models.STD)).permute(0, 3, 1, 2)
    with torch.no_grad():
        predicted = model(x).argmax(1).numpy()
    return float(np.mean(predicted == np.asarray(found.labels)[kept]))


def test_cli_imports_quantizes_within_budget_and_eval_agrees_on_unseen_scans(trained, scans, tmp_path):
    out = tmp_path / "int8"
    r = edge_cli_without_tensorflow(  # PyTorch, litert-torch and the LiteRT Quantizer: no TensorFlow
        "import", trained["program"], "--labels", trained["labels"], "--data", scans["val"],
        "--quantize", "int8", "--max-drop", "0.02", "--out", out, "--json",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    imported = summary["imported_from"]
    assert imported["form"] == "exported program" and imported["layout"] == "NCHW"
    assert imported["agreement"]["top1"] >= 0.995 and imported["agreement"]["max_difference"] < 1e-3
    assert imported["preprocessing"]["softmax_added"] and imported["model"] == str(trained["program"])
    assert summary["quantization"]["mode"] == "int8" and summary["input"]["dtype"] == "uint8"
    assert summary["quantization"]["budget"]["met"] and summary["fingerprint"]["labels"] == trained["classes"]
    assert summary["quantized_from"]["model"] == str(trained["program"])
    assert read_bundle(out).manifest["imported_from"]["float"]["metrics"]["reference"] == "pytorch"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # the float bundle aside is gone

    int8 = edge.evaluate(out, scans["test"]).report.accuracy  # scans neither PyTorch nor the search saw
    assert torch_accuracy(trained["model"], scans["test"]) - int8 <= 0.02
    # and a device runs it as any bundle: frames of one class, scored against their truth, drift watched
    run = edge.run(out, scans["test"] / "3", truth="3")
    assert run.frames == len(list((scans["test"] / "3").iterdir())) and run.accuracy > 0.8
    assert run.drift is not None


@pytest.mark.slow  # the suite's 8 minutes: the end-to-end test above is the default one
def test_torchscript_needs_its_size_and_its_bundle_takes_pixels_as_pytorch_after_the_preprocessing(
    trained, scans, tmp_path
):
    with pytest.raises(EdgeError, match="TorchScript, which does not record its input size: give input_size"):
        edge.import_model(trained["script"], trained["labels"], scans["val"], tmp_path / "no")
    out = tmp_path / "bgr"
    result = edge.import_model(trained["script"], trained["labels"], scans["val"], out, input_size="32", bgr=True)
    assert result.imported_from["form"] == "TorchScript" and result.quantization["mode"] == "float32"
    assert result.imported_from["preprocessing"]["order"] == "BGR"
    # The bundle takes RGB pixels 0..255: its scores are PyTorch's on them scaled to 0..1, normalised by --mean
    # and --std (given R,G,B), then put in BGR order.
    model = load_model(out)
    images, _, _ = load_images(scan(scans["test"]).paths[:8], 32)
    images[..., 0] = 255 - images[..., 0]  # colour, so that the channel order matters
    inputs = model.interpreter.get_input_details()[0]
    expected = torch.from_numpy(images).float() / 255
    expected = ((expected - torch.tensor(torch_models.MEAN)) / torch.tensor(torch_models.STD)).flip(-1)
    expected = expected.permute(0, 3, 1, 2)
    with torch.no_grad():
        wanted = torch.softmax(trained["model"](expected), 1).numpy()
    for image, scores in zip(images, wanted, strict=True):
        model.interpreter.set_tensor(inputs["index"], image[None].astype(np.float32))
        model.interpreter.invoke()
        found = model.interpreter.get_tensor(model.interpreter.get_output_details()[0]["index"])[0]
        np.testing.assert_allclose(found, scores, atol=1e-4)


@pytest.mark.slow  # the suite's 8 minutes: the end-to-end test above is the default one
def test_a_dynamic_size_takes_input_size(trained, scans, tmp_path):
    dynamic = torch_models.save_program(trained["model"], tmp_path / "any.pt2", dynamic=True)
    with pytest.raises(EdgeError, match="takes images of any size: give the one it was trained at with input_size"):
        edge.import_model(dynamic, trained["labels"], scans["val"], tmp_path / "no")
    result = edge.import_model(dynamic, trained["labels"], scans["val"], tmp_path / "b", input_size="40,36")
    assert result.input["shape"] == [1, 40, 36, 3] and result.backbone["input_size"] == [40, 36]
    assert result.imported_from["agreement"]["top1"] >= 0.995
    with pytest.raises(EdgeError, match=r"takes 32x32 images only; leave input_size out"):
        edge.import_model(trained["program"], trained["labels"], scans["val"], tmp_path / "no", input_size=40)


@pytest.mark.slow  # the suite's 8 minutes: the end-to-end test above is the default one
def test_a_model_giving_probabilities_gets_no_second_softmax(trained, scans, tmp_path):
    probabilities = torch.nn.Sequential(trained["model"], torch.nn.Softmax(1)).eval()
    model = torch_models.save_program(probabilities, tmp_path / "softmax.pt2")
    result = edge.import_model(model, trained["labels"], scans["val"], tmp_path / "b")
    assert not result.imported_from["preprocessing"]["softmax_added"]
    assert result.imported_from["agreement"]["max_difference"] < 1e-4  # a second softmax would flatten the scores
    assert result.metrics["pytorch"]["accuracy"] == result.metrics["tflite"]["accuracy"] > 0.9


@pytest.mark.parametrize(
    "case, message",
    [
        ("two_outputs", "gives 2 outputs: edge imports a classifier, with one output of a score per class"),
        ("detector", r"gives an output of shape \[1, 16, 9\]: edge imports a classifier"),
        ("labels", "gives 4 scores and labels names 3 classes: give the labels file of this model"),
        ("not_a_model", "is not a PyTorch model edge can read"),
        ("missing", "does not exist: give an exported program"),
        ("mean", "mean=1,2: give three numbers R,G,B"),
        ("std", "std=0,1,1: each must be above 0"),
        ("range", "input_range=1,0: the low end must be below the high end"),
        ("quantize", "unknown quantize 'int9': did you mean int8"),
        ("coral_float", "coral-usb runs only full int8 with uint8 IO: add quantize int8"),
        ("io_type", "io_type is for quantize=int8"),
        ("ai_camera", "the AI Camera's converter \\(Sony's\\) takes Keras models only, not an imported one"),
        ("no_labels", "labels is required"),
    ],
)
def test_bad_input_is_refused_before_anything_is_written(case, message, trained, scans, tmp_path):
    model, labels, args = trained["program"], trained["labels"], {}
    if case == "two_outputs":
        model = torch_models.save_program(torch_models.two_outputs(4), tmp_path / "two.pt2")
    elif case == "detector":
        model = torch_models.save_program(torch_models.detector(), tmp_path / "boxes.pt2")
    elif case == "labels":
        labels = torch_models.labels_file(tmp_path / "three.txt", ["0", "1", "2"])
    elif case == "not_a_model":
        model = tmp_path / "notes.pt2"
        model.write_text("not a model")
    elif case == "missing":
        model = tmp_path / "gone.pt2"
    elif case in ("mean", "std"):
        args[case] = "1,2" if case == "mean" else "0,1,1"
    elif case == "range":
        args["input_range"] = "1,0"
    elif case == "quantize":
        args["quantize"] = "int9"
    elif case == "coral_float":
        args["device"] = "coral-usb"
    elif case == "ai_camera":
        args.update(device="rpi-ai-camera", quantize="int8")
    elif case == "io_type":
        args["io_type"] = "uint8"
    elif case == "no_labels":
        labels = None
    with pytest.raises(EdgeError, match=message):
        edge.import_model(model, labels, scans["val"], tmp_path / "out", **args)
    assert not (tmp_path / "out").exists()


def test_an_onnx_file_without_its_toolchain_says_how_to_install_it(trained, scans, tmp_path, monkeypatch):
    monkeypatch.setenv(ROOT_VARIABLE, str(tmp_path / "no-toolchains"))
    model = tmp_path / "digits.onnx"
    model.write_bytes(b"\x08\x07")  # its contents are not read: the toolchain that reads them is missing
    r = edge_cli("import", model, "--labels", trained["labels"], "--data", scans["val"], "--out", tmp_path / "b")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "onnx2tf toolchain is not installed" in r.stderr and "edge devices toolchain install onnx2tf" in r.stderr
    assert not (tmp_path / "b").exists()


@pytest.mark.slow
def test_onnx_exported_from_pytorch_imports_through_onnx2tf_and_agrees_with_onnx_runtime(trained, scans, tmp_path):
    """The real toolchain: reused where $EDGE_TOOLCHAINS (or the default place) has it, else installed (2.4 GB)."""
    pytest.importorskip("onnxscript")  # PyTorch's ONNX exporter
    edge.install_toolchain("onnx2tf")
    model = tmp_path / "digits.onnx"
    torch.onnx.export(trained["model"], (torch.zeros(1, 3, 32, 32),), str(model), dynamo=True, opset_version=18)
    result = edge.import_model(model, trained["labels"], scans["val"], tmp_path / "int8", quantize="int8",
                               max_drop=0.02)  # fmt: skip
    imported = result.imported_from
    assert imported["form"] == "ONNX opset 18" and imported["converter"]["name"] == "onnx2tf"
    assert imported["agreement"]["with"] == "ONNX Runtime" and imported["agreement"]["top1"] >= 0.995
    assert result.quantization["mode"] == "int8" and result.quantization["budget"]["met"]
    int8 = edge.evaluate(tmp_path / "int8", scans["test"]).report.accuracy
    assert torch_accuracy(trained["model"], scans["test"]) - int8 <= 0.02

    newer = tmp_path / "newer.onnx"  # an opset onnx2tf does not take
    torch.onnx.export(trained["model"], (torch.zeros(1, 3, 32, 32),), str(newer), dynamo=True, opset_version=23)
    with pytest.raises(EdgeError, match="is ONNX opset 23; onnx2tf converts opsets 7 to 22"):
        edge.import_model(newer, trained["labels"], scans["val"], tmp_path / "no")
    assert not (tmp_path / "no").exists()
