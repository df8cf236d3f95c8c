"""The accuracy budget kept by keeping operations higher: on a real CNN that plain int8 breaks (one outlier
channel), the search finds the two operations around it; on the same CNN unchanged, it keeps nothing."""

import numpy as np
import pytest

from edge.converter.datasets import load_split
from edge.converter.pipeline import edgetpu_warning
from edge.converter.quantize import calibrate, calibration_images
from edge.converter.selective import keep_budget, off_edgetpu, per_operation, scores_of
from edge.devices.profiles import get_profile
from edge.errors import EdgeError
from edge.interpreter import make_interpreter, op_precisions


@pytest.fixture(scope="module")
def images(digits):
    split = load_split(digits, 32, val_split=0.3, seed=1)
    return split.val_x, split.val_y, calibration_images(split.train_x, 64, seed=0)


def search(path, images, max_drop=0.02, fallback="float", reference=None, tested=True, prepare=False):
    x, y, calibration = images
    model = path.read_bytes()
    if reference is None:
        reference = float(np.mean(scores_of(model, x, (0, 255)).argmax(1) == y))
    calibrated = calibrate(model, calibration)
    return keep_budget(
        calibrated, "uint8", x, y, (0, 255), reference, max_drop, fallback, tested=tested, prepare=prepare
    )


def test_an_outlier_channel_is_kept_float_on_both_sides(cnn_files, images):
    """The search alone (equalization would mend this model first: tests/test_equalize.py)."""
    s = search(cnn_files / "outlier.tflite", images)
    assert s.plain["drop"] >= 0.2  # plain int8 really breaks it
    assert s.met and s.drop <= 0.02
    # the first convolution's output carries the outlier: it and its consumer stay float, nothing else
    assert s.kept == {0: "float", 1: "float"}
    assert op_precisions(make_interpreter(s.model)) == {"float32": 2, "int8": 3}
    # by cosine the first convolution's output looks intact (the outlier dominates it); the damage shows
    # in what the second makes of it
    assert s.operations[0].added < 0.01 < 0.1 < s.operations[1].added
    assert [row["kept"] for row in per_operation(s)] == ["float", "float", None, None, None]
    assert off_edgetpu(s) == 5  # float from the first operation on: none of it would stay on an Edge TPU
    warning = edgetpu_warning(s, get_profile("coral-usb"), "float")
    assert "2 operation(s) kept float" in warning and "5 of 5 operations" in warning
    assert edgetpu_warning(s, get_profile("rpi5"), "float") is None


def test_a_model_within_budget_keeps_nothing(cnn_files, images):
    s = search(cnn_files / "control.tflite", images)
    assert s.met and s.kept == {} and s.tried == [] and s.model == s.plain_model
    assert s.plain["drop"] <= 0.02 and off_edgetpu(s) == 0
    assert all(op.error < 0.05 for op in s.operations)  # the quantizer's per-tensor report, still made


def test_int16_fallback_computes_in_int16(cnn_files, images):
    s = search(cnn_files / "outlier.tflite", images, max_drop=0.05, fallback="int16")
    assert s.met and set(s.kept.values()) == {"int16"}
    assert op_precisions(make_interpreter(s.model)).get("int16") == len(s.kept)
    assert len(s.model) < len(search(cnn_files / "outlier.tflite", images).model)  # int8 weights, not float


def test_when_nothing_holds_the_budget_the_nearest_is_returned(cnn_files, images):
    # a reference above what float gets, every image counted: nothing reaches it
    s = search(cnn_files / "extreme.tflite", images, max_drop=0.0, reference=1.0, tested=False)
    assert not s.met
    counts = [len(t["kept"]) for t in s.tried if "accuracy" in t]
    assert counts == [1, 2, 4, 5]  # doubling up to every operation
    best = max(t["accuracy"] for t in s.tried if "accuracy" in t)
    assert s.accuracy == best and s.drop == pytest.approx(1.0 - best)


def test_a_model_with_nothing_to_quantize_is_refused(tmp_path, images):
    from edge.converter.quantize import to_tflite
    from edge.converter.tfkeras import keras, tf

    inputs = keras.Input((32, 32, 3))
    # REDUCE_MAX and FLOOR have no int8 form in the LiteRT Quantizer: it would leave every operation float
    outputs = keras.layers.Lambda(lambda t: tf.floor(tf.reduce_max(t, axis=[1, 2])))(inputs)
    path = tmp_path / "floor.tflite"
    path.write_bytes(to_tflite(keras.Model(inputs, outputs), "float32"))
    x, y, calibration = images
    with pytest.raises(EdgeError, match="none of the model's operations can be quantized to int8"):
        search(path, (x, np.minimum(y, 2), calibration), reference=1.0)


def test_spread_takes_the_classes_in_turn():
    from edge.converter.selective import spread

    labels = np.array([0] * 50 + [1] * 30 + [2] * 20)
    order = spread(labels)
    assert sorted(order) == list(range(100))
    assert sorted(labels[order[:6]]) == [0, 0, 1, 1, 2, 2]  # the first few see every class


def test_next_count_doubles_then_halves_to_the_fewest_that_hold():
    from edge.converter.selective import next_count

    def counts(total, fewest):  # keeping `fewest` or more higher holds the budget
        tried, low, high = [], 0, None
        while (k := next_count(low, high, total)) is not None:
            tried.append(k)
            low, high = (low, k) if k >= fewest else (k, high)
        return tried, high

    assert counts(10, 3) == ([1, 2, 4, 3], 3)
    assert counts(10, 11) == ([1, 2, 4, 8, 10], None)  # nothing holds: up to every operation, then stop
    assert all(counts(total, fewest)[1] == fewest for total in range(1, 13) for fewest in range(1, total + 1))


def test_a_start_is_taken_only_where_the_images_show_it_calls_better():
    """One image fewer lost on 120 is chance: plain int8 stays the start (by default); fifty fewer is shown."""
    from types import SimpleNamespace

    from edge.converter.selective import _better

    labels = np.zeros(120, dtype=np.int64)
    plain, one, fifty = (np.where(np.arange(120) < wrong, 1, 0) for wrong in (60, 59, 10))
    for tested in (True, False):
        task = SimpleNamespace(labels=labels, tested=tested)
        tried = [{"start": "plain int8", "drop": 60 / 120}, {"start": "equalized", "drop": 59 / 120}]
        start, why = _better(task, tried, {"plain int8": plain, "equalized": one})
        assert (start["start"], why is None) == (("equalized", True) if not tested else ("plain int8", False))
        if tested:
            assert why.startswith("equalized lost 0.4917 against plain int8's 0.5000, 1 image(s) fewer: not shown")
        tried[1]["drop"] = 10 / 120
        start, why = _better(task, tried, {"plain int8": plain, "equalized": fifty})
        assert start["start"] == "equalized" and why is None
