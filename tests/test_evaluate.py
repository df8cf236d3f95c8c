"""`edge eval` on our bundles and on bare third-party .tflite files (float32, int8 and uint8 IO),
with real digit scans; answers checked against the Keras model and a plain interpreter loop."""

import json
import shutil

import cv2
import numpy as np
import pytest

from edge.eval.evaluate import classify_all, evaluate
from edge.folders import scan
from edge.images import read_rgb
from edge.interpreter import make_interpreter, op_precisions
from edge.model import read_labels
from edge.preprocess import resize
from tests.cli import edge_cli, edge_cli_without_tensorflow

SIZE = 32


@pytest.fixture(scope="module")
def third_party(digits, tmp_path_factory):
    """A small CNN the way other tools export one: takes pixels scaled to [-1, 1] itself, no
    preprocessing in the graph, labels in a separate file. Exported with float32, int8 and uint8 IO."""
    from edge.converter.datasets import load_split
    from edge.converter.quantize import to_tflite
    from edge.converter.tfkeras import keras

    split = load_split(digits, SIZE, seed=0)
    scale = lambda x: x.astype(np.float32) / 127.5 - 1  # noqa: E731
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((SIZE, SIZE, 3)),
            keras.layers.Conv2D(16, 3, strides=2, activation="relu"),
            keras.layers.Conv2D(32, 3, strides=2, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(4, activation="softmax"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy")
    model.fit(scale(split.train_x), split.train_y, epochs=25, batch_size=32, verbose=0)
    folder = scan(digits)
    images = np.stack([resize(read_rgb(p), SIZE, SIZE) for p in folder.paths])
    keras_pred = model.predict(scale(images), verbose=0).argmax(1)
    out = tmp_path_factory.mktemp("third_party")
    calibration = scale(split.train_x[:100])
    files = {}
    for name, quantize, io in (("float32", "float32", "float32"), ("int8", "int8", "int8"), ("uint8", "int8", "uint8")):
        files[name] = out / f"{name}.tflite"
        files[name].write_bytes(to_tflite(model, quantize, io, calibration if quantize == "int8" else None))
    (out / "labels.txt").write_text("0\n1\n2\n3\n")
    return {"files": files, "labels": out / "labels.txt", "keras_pred": keras_pred, "y_true": folder.labels}


@pytest.mark.parametrize("io", ["float32", "int8", "uint8"])
def test_bare_tflite_agrees_with_its_keras_model(third_party, digits, io):
    r = evaluate(third_party["files"][io], digits, labels=third_party["labels"], input_range=(-1, 1), threads=2)
    keras_accuracy = np.mean(third_party["keras_pred"] == third_party["y_true"])
    assert keras_accuracy > 0.8  # the model learned something, so agreement means something
    assert r.report.input["dtype"] == io and r.report.source == "tflite"
    assert r.y_true.tolist() == third_party["y_true"].tolist()
    agreement = np.mean(r.y_pred == third_party["keras_pred"])
    assert agreement >= (1.0 if io == "float32" else 0.95)
    assert r.report.accuracy == pytest.approx(np.mean(r.y_pred == r.y_true))


def test_the_files_say_what_computes_in_integers(third_party):
    precisions = {name: op_precisions(make_interpreter(path)) for name, path in third_party["files"].items()}
    assert precisions["float32"] == {"float32": 5}  # two convolutions, the pooling, the dense layer, the softmax
    assert precisions["int8"] == precisions["uint8"] == {"int8": 5}  # the quantizer left nothing in float


def test_wrong_input_range_is_noticed(third_party, digits):
    right = evaluate(third_party["files"]["uint8"], digits, labels=third_party["labels"], input_range=(-1, 1))
    wrong = evaluate(third_party["files"]["uint8"], digits, labels=third_party["labels"])  # pixels as 0..255
    assert wrong.report.accuracy < right.report.accuracy - 0.3


def test_bundle_matches_a_plain_interpreter_loop(e2e, digits):
    folder = scan(digits)
    interpreter = make_interpreter(e2e.bundle + "/model.tflite")
    size = e2e.input["shape"][1]
    plain = [
        int(scores.argmax())
        for scores, _ in classify_all(interpreter, ((resize(read_rgb(p), size, size), p) for p in folder.paths))
    ]  # one image an invoke
    r = evaluate(e2e.bundle, digits, warmup=2)
    assert r.y_pred.tolist() == plain
    assert r.report.n == len(folder.paths) == 680 and r.report.source == "bundle"
    assert r.report.latency_ms["runs"] == 679 and len(r.times_ms) == 1 + 2 + 679
    assert (
        r.report.confusion_matrix
        == np.bincount(folder.labels * 4 + np.array(plain), minlength=16).reshape(4, 4).tolist()
    )
    batched = evaluate(e2e.bundle, digits, batch=16, warmup=0)
    assert batched.y_pred.tolist() == plain and batched.report.latency_ms["runs"] == 42  # ceil(680/16) - 1


def test_unreadable_images_are_skipped_and_counted(e2e, few_digits, tmp_path):
    data = tmp_path / "data"
    for label in ("0", "1"):
        shutil.copytree(few_digits / label, data / label)
    (data / "0" / "truncated.png").write_bytes(cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))[1].tobytes()[:30])
    (data / "1" / "readme.txt").write_text("not an image")
    r = evaluate(e2e.bundle, data).report
    assert r.n == 32 and r.skipped["count"] == 2
    assert sorted(f["path"].rsplit("/", 1)[1] for f in r.skipped["files"]) == ["readme.txt", "truncated.png"]
    # classes 2 and 3 have no folder here: their recall is 0 only if predicted, else they are left out
    assert r.per_class["2"]["support"] == 0 and r.per_class["3"]["support"] == 0


def test_labels_files(tmp_path):
    plain, coral = tmp_path / "plain.txt", tmp_path / "coral.txt"
    plain.write_text("\ufeffcat\ndog\n\n")
    coral.write_text("0  background\n1: cat\n3 fox terrier\n")
    assert read_labels(plain) == ["cat", "dog"]
    assert read_labels(coral) == ["background", "cat", "2", "fox terrier"]


def test_cli_writes_json_and_plot(e2e, digits, tmp_path):
    r = edge_cli(
        "eval",
        e2e.bundle,
        "--data",
        digits,
        "--json",
        tmp_path / "r.json",
        "--plot",
        tmp_path / "p.png",
        "--threads",
        1,
        "--top-k",
        2,
    )
    assert r.returncode == 0, r.stderr
    assert "macro avg" in r.stdout and "p50" in r.stdout and "top-2" in r.stdout
    report = json.loads((tmp_path / "r.json").read_text())
    for key in (
        "n",
        "labels",
        "accuracy",
        "top_k_accuracy",
        "per_class",
        "macro",
        "weighted",
        "confusion_matrix",
        "latency_ms",
        "fps",
        "model_bytes",
    ):
        assert key in report, key
    assert set(report["latency_ms"]) >= {"first", "mean", "p50", "p90", "p99"}
    assert set(report["top_k_accuracy"]) == {"1", "2"} and report["threads"] == 1
    assert set(report["per_class"]["0"]) == {"precision", "recall", "f1", "support"}
    plot = cv2.imread(str(tmp_path / "p.png"))
    assert plot is not None and plot.shape[1] > 2 * plot.shape[0]


@pytest.mark.parametrize(
    "args,message",
    [
        (["--labels", "{labels}"], "is a bundle"),
        (["--top-k", "9"], "between 1 and the 4 classes"),
        (["--threads", "0"], "--threads 0"),
        (["--plot", "{tmp}/p.jpg"], "ending in .png"),
        (["--json", "{tmp}/missing/r.json"], "does not exist"),
    ],
)
def test_cli_bad_options(e2e, digits, tmp_path, args, message):
    (tmp_path / "labels.txt").write_text("a\n")
    args = [a.format(labels=tmp_path / "labels.txt", tmp=tmp_path) for a in args]
    r = edge_cli("eval", e2e.bundle, "--data", digits, *args)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
    assert len([line for line in r.stderr.splitlines() if line.startswith("error:")]) == 1


def test_cli_bad_models_and_data(third_party, e2e, digits, tmp_path):
    (tmp_path / "junk.tflite").write_bytes(b"not a flatbuffer" * 10)
    (tmp_path / "three.txt").write_text("a\nb\nc\n")
    wrong_names = tmp_path / "wrong"
    shutil.copytree(digits / "0", wrong_names / "zero")
    (tmp_path / "empty" / "0").mkdir(parents=True)
    cases = [
        (
            ["eval", tmp_path / "junk.tflite", "--data", digits, "--labels", third_party["labels"]],
            "not a usable TFLite",
        ),
        (["eval", third_party["files"]["uint8"], "--data", digits], "give --labels"),
        (
            ["eval", third_party["files"]["uint8"], "--data", digits, "--labels", tmp_path / "three.txt"],
            "3 class names",
        ),
        (
            [
                "eval",
                third_party["files"]["uint8"],
                "--data",
                digits,
                "--labels",
                third_party["labels"],
                "--input-range",
                "1,-1",
            ],
            "low end",
        ),
        (
            [
                "eval",
                third_party["files"]["uint8"],
                "--data",
                digits,
                "--labels",
                third_party["labels"],
                "--input-range",
                "x",
            ],
            "two numbers",
        ),
        (["eval", e2e.bundle, "--data", wrong_names], "does not know: zero"),
        (["eval", e2e.bundle, "--data", tmp_path / "nowhere"], "does not exist"),
        (["eval", e2e.bundle, "--data", tmp_path / "empty"], "has no images"),
        (["eval", tmp_path / "nothing.tflite", "--data", digits], "does not exist"),
    ]
    for args, message in cases:
        r = edge_cli(*args)
        assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)


def test_an_image_given_as_data_is_named_a_file(e2e, digits):
    image = next((digits / "0").iterdir())
    r = edge_cli("eval", e2e.bundle, "--data", image)
    assert r.returncode == 2 and r.stderr.splitlines() == [r.stderr.strip()] and "Traceback" not in r.stderr
    assert f"{image} is a file, not a data folder: give a folder with one sub-folder of images per class" in r.stderr


def test_eval_runs_where_tensorflow_cannot_be_imported(e2e, digits):
    """The device side: numpy, OpenCV, click and LiteRT only. TensorFlow and Keras are made unimportable."""
    r = edge_cli_without_tensorflow("eval", e2e.bundle, "--data", digits, "--json", "-")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["n"] == 680 and report["runtime"].startswith("ai_edge_litert")
