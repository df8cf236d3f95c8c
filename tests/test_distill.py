"""Distillation (edge convert --teacher): the teacher's softened scores, the loss and the metric on real tensors,
a student that learns from the teacher's scores alone, and the teachers refused before any training."""

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import binomtest

from edge.converter.distill import FLOOR, NO_LABEL, Teaching, gain, probabilities, softened
from tests.cli import edge_cli


def teaching(temperature=2.0, weight=0.5) -> Teaching:
    empty = np.zeros((0, 3), np.float32)
    return Teaching(temperature, weight, empty, empty, np.zeros((0, 8, 8, 3), np.uint8), empty, {})


def test_softening_keeps_the_order_flattens_with_temperature_and_floors_an_int8_zero():
    p = np.array([[0.7, 0.2, 0.1], [0.0, 1.0, 0.0]], np.float32)
    one, four = softened(p, 1.0), softened(p, 4.0)
    assert np.allclose(one.sum(1), 1) and np.allclose(four.sum(1), 1)
    assert np.allclose(one[0], p[0], atol=1e-6)  # T = 1: the scores as they are
    assert (four[0].argmax(), four[0].max() < one[0].max()) == (0, True)
    assert np.allclose(four[0], p[0] ** 0.25 / (p[0] ** 0.25).sum(), atol=1e-6)
    assert np.allclose(four[1, [0, 2]], FLOOR**0.25 / (1 + 2 * FLOOR**0.25), atol=1e-6)  # not -inf


def test_the_loss_is_cross_entropy_at_weight_0_and_the_teachers_kl_at_weight_1():
    from edge.converter.tfkeras import tf

    p = tf.constant([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3]])
    soft = softened(np.array([[0.8, 0.1, 0.1], [0.2, 0.5, 0.3]]), 2.0)
    t = teaching()
    y = t.targets(np.array([0, NO_LABEL]), soft)
    labels_only = teaching(weight=0.0).loss()(tf.constant(y), p).numpy()
    assert np.allclose(labels_only, [-np.log(0.6), 0.0], atol=1e-6)  # an unlabelled image teaches nothing here
    teacher_only = teaching(weight=1.0).loss()(tf.constant(y), p).numpy()
    student = softened(p.numpy(), 2.0)
    kl = (soft * np.log(soft / student)).sum(1) * 4
    assert np.allclose(teacher_only, kl, atol=1e-5) and teacher_only[0] > 0 and teacher_only[1] < 1e-5


def test_accuracy_counts_the_labelled_images_only():
    from edge.converter.tfkeras import tf

    metric = teaching().metric()
    y = teaching().targets(np.array([0, 1, NO_LABEL, NO_LABEL]), np.full((4, 3), 1 / 3, np.float32))
    metric.update_state(tf.constant(y), tf.constant([[0.9, 0.1, 0], [0.9, 0.1, 0], [0.9, 0.1, 0], [0, 0, 1.0]]))
    assert metric.result().numpy() == pytest.approx(0.5)


def test_the_gain_counts_the_images_each_student_wins():
    truth = np.zeros(100, int)
    taught, alone = truth.copy(), truth.copy()
    alone[:20] = 1  # the student alone misses 20 the taught one gets
    taught[20:22] = 1  # and gets 2 the taught one misses
    g = gain(truth, taught, alone)
    assert (g["won"], g["lost"], g["taught"], g["alone"], g["shown"]) == (20, 2, 0.98, 0.8, "better")
    assert g["gain"] == pytest.approx(0.18) and g["low"] < 0.18 < g["high"] and g["p_value"] < 1e-3
    assert g["p_value"] == pytest.approx(2 * binomtest(20, 22, 0.5, alternative="greater").pvalue)  # two-sided
    assert gain(truth, alone, taught)["shown"] == "worse"
    assert gain(truth, taught, taught)["shown"] == "no difference shown"


def test_scores_are_taken_as_probabilities_or_else_as_logits():
    int8_softmax = np.array([[0.5, 0.4961, 0.0]])  # steps of 1/256: sums to 1 only roughly
    assert np.array_equal(probabilities(int8_softmax), int8_softmax)
    logits = np.array([[2.0, 0.0, -1.0]])
    assert np.allclose(probabilities(logits), np.exp(logits) / np.exp(logits).sum())


def half_unlabelled(digits, out):
    """The digit scans with every other image of each class moved to _unlabelled/."""
    shutil.copytree(digits, out)
    for folder in sorted(p for p in out.iterdir() if p.is_dir()):
        for path in sorted(folder.iterdir())[1::2]:
            (out / "_unlabelled" / folder.name).mkdir(parents=True, exist_ok=True)
            path.rename(out / "_unlabelled" / folder.name / path.name)
    return out


def test_a_student_learns_from_the_teachers_scores_alone(digits, e2e, tmp_path):
    """At --distill-weight 1 the labels are never used: what the student knows, it learned from the teacher's
    scores, on the labelled images and the unlabelled ones (the teacher at 48 px, the student at 32)."""
    data, out = half_unlabelled(digits, tmp_path / "data"), tmp_path / "student"
    r = edge_cli(
        "convert",
        *("--data", data, "--out", out, "--teacher", e2e.bundle, "--distill-weight", 1, "--no-gain"),
        *("--weights", "none", "--input-size", 32, "--alpha", 0.35, "--epochs", 4, "--fine-tune-epochs", 0),
        *("--no-augment", "--quantize", "float32", "--batch-size", 16, "--allow-weak"),
    )
    assert r.returncode == 0, r.stderr[-3000:]
    manifest = json.loads((out / "edge.json").read_text())
    d = manifest["training"]["distillation"]
    teacher_model = (Path(e2e.bundle) / "model.tflite").read_bytes()
    assert d["teacher"]["sha256"] == hashlib.sha256(teacher_model).hexdigest() and d["teacher"]["kind"] == "bundle"
    assert (d["teacher"]["input_size"], d["temperature"], d["weight"]) == ([48, 48], 2.0, 1.0)
    assert d["unlabelled_images"] == 340 and manifest["training"]["images"]["train"] == 272 and "gain" not in d
    assert manifest["metrics"]["keras"]["accuracy"] > 0.5  # 4 classes: chance is 0.25 (0.63 after 3 epochs)
    assert f"teacher    mobilenetv2 (bundle, {len(teacher_model):,} bytes)" in r.stdout and "340 unlabelled" in r.stdout


def test_the_images_a_bundle_teacher_trained_on_are_found_again_from_its_options(e2e):
    """Split again as its edge.json says (--data, --val-split, --seed): a student split the same way validates
    on images the teacher never saw; split with another seed, on some it trained on."""
    from edge.converter.datasets import stratified_split
    from edge.converter.distill import load_teacher
    from edge.folders import scan

    teacher = load_teacher(e2e.bundle, ["0", "1", "2", "3"])
    folder = scan(e2e.training["options"]["data"])  # under xdist, the digits of the worker that trained it
    assert len(teacher.trained_on) == 544  # 680 scans, 0.2 held out
    for seed, seen in ((0, False), (1, True)):
        _, val = stratified_split(folder.labels, 0.2, seed)
        assert any(folder.paths[i].resolve() in teacher.trained_on for i in val) == seen


def test_a_teacher_of_other_classes_is_refused_before_training(few_digits, e2e, tmp_path):
    r = edge_cli("convert", "--data", few_digits, "--out", tmp_path / "out", "--teacher", e2e.bundle)
    line = r.stderr.strip().splitlines()[-1]
    assert r.returncode == 2 and not (tmp_path / "out").exists() and "Traceback" not in r.stderr
    assert "knows other classes than the training folders (it lacks 7; it has 2, 3, which" in line


def keras_teacher(path, classes: int, size: int = 32):
    """A Keras model that scores every image alike: always the first class, no better than guessing. It holds
    edge's Preprocess layer, as edge's own models do (Keras must know it to load the file)."""
    from edge.converter.layers import Preprocess
    from edge.converter.tfkeras import keras

    pixels = keras.Input((size, size, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(Preprocess("tf")(pixels))
    model = keras.Model(pixels, keras.layers.Dense(classes, activation="softmax", kernel_initializer="zeros")(pooled))
    model.save(path)
    return path


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda p: keras_teacher(p / "t.keras", 3), "is no better than guessing on the 9 validation images"),
        (lambda p: keras_teacher(p / "t.keras", 5), "gives (None, 5): a teacher gives one score a class, 3 here"),
        (lambda p: p.joinpath("t.keras").write_bytes(b"not a model") and p / "t.keras", "nor a Keras model"),
    ],
    ids=["weak", "width", "garbage"],
)
def test_teachers_that_cannot_teach_are_refused(make, message, few_digits, tmp_path, fast):
    import edge
    from edge.errors import EdgeError

    with pytest.raises(EdgeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        edge.convert("mobilenetv2", few_digits, tmp_path / "out", teacher=make(tmp_path), **fast)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_the_gain_compares_the_taught_student_with_itself_trained_alone(digits, e2e, tmp_path):
    import edge
    from edge.render import convert_text

    data = half_unlabelled(digits, tmp_path / "data")
    s = edge.convert(
        "mobilenetv2",
        data,
        tmp_path / "student",
        teacher=e2e.bundle,
        **dict(weights="none", input_size=32, alpha=0.35, epochs=3, fine_tune_epochs=0, augment=False),
        **dict(quantize="float32", batch_size=16, allow_weak=True),
    )
    g = s.training["distillation"]["gain"]
    assert g["taught"] == pytest.approx(s.metrics["keras"]["accuracy"])  # the written model is the taught one
    assert g["gain"] == pytest.approx(g["taught"] - g["alone"]) and g["won"] - g["lost"] == round(
        g["gain"] * s.metrics["n"]
    )
    assert f"distilled  {g['taught']:.4f} against {g['alone']:.4f} trained alone" in convert_text(s)
