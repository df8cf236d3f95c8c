"""Equalization and bias correction before int8 (edge.converter.equalize), on a real CNN trained on the digits:
the outlier channel plain int8 breaks is equalized away in float (the same scores to 1e-4), and the int8 file
keeps every operation int8 within the budget, where the search alone kept two float; a model plain int8 already
holds is left as it is; a ReLU6 join is not equalized."""

import numpy as np
import pytest

from edge.converter import equalize
from edge.converter.quantize import calibrate, quantize_int8, to_tflite
from edge.converter.selective import scores_of
from edge.errors import EdgeError
from edge.interpreter import make_interpreter, op_precisions
from tests.test_selective import images, search  # noqa: F401 -- images: the fixture, used by name


def test_the_outlier_pair_is_equalized_and_computes_the_same(cnn_files, images):  # noqa: F811
    x, _, calibration = images
    model = (cnn_files / "outlier.tflite").read_bytes()
    equalized, pairs = equalize.equalize(model, calibration)
    assert [(p["first"], p["second"], p["types"], p["join"]) for p in pairs] == [
        (0, 1, ["CONV_2D", "CONV_2D"], "relu"),
        (1, 3, ["CONV_2D", "FULLY_CONNECTED"], "relu + MEAN"),  # across the pooling: a channel's mean scales with it
    ]
    assert pairs[0]["widest_before"] > 100 and pairs[0]["largest_scale"] > 100  # the 1000x channel, undone
    assert np.abs(scores_of(equalized, x, (0, 255)) - scores_of(model, x, (0, 255))).max() <= 1e-4
    out = equalize._Graph(model).ops[0].outputs[0]
    before = equalize.channel_stats(model, calibration, {out})[out][0]
    after = equalize.channel_stats(equalized, calibration, {out})[out][0]
    assert before.max() / np.median(before) > 100 > 10 > after.max() / np.median(after)


def test_the_search_starts_from_the_equalized_model_and_keeps_nothing_float(cnn_files, images):  # noqa: F811
    alone = search(cnn_files / "outlier.tflite", images)
    s = search(cnn_files / "outlier.tflite", images, prepare=True)
    assert alone.kept and s.met and s.kept == {} and s.drop <= 0.02
    assert op_precisions(make_interpreter(s.model)) == {"int8": 5}
    assert len(s.model) <= 1.1 * len(
        quantize_int8(calibrate((cnn_files / "outlier.tflite").read_bytes(), images[2]), "uint8")
    )
    tried = {t["start"]: t["drop"] for t in s.prepared["tried"]}
    assert tried["plain int8"] >= 0.2 > 0.02 >= tried["equalized"] >= tried[s.prepared["chosen"]]
    assert s.prepared["chosen"].startswith("equalized") and s.prepared["bias_corrected_operations"] == 3


def test_bias_correction_takes_the_int8_weights_mean_error_off(cnn_files, images):  # noqa: F811
    """The int8 file's mean scores come closer to float's once the float biases carry the mean error the int8
    weights add (read from the quantizer's own plain int8 file)."""
    x, _, calibration = images
    model = (cnn_files / "outlier.tflite").read_bytes()
    plain = quantize_int8(calibrate(model, calibration), "uint8")
    corrected, fixed = equalize.correct_bias(model, plain, calibration)
    assert fixed == [0, 1, 3]  # both convolutions and the dense layer
    again = quantize_int8(calibrate(corrected, calibration), "uint8")
    reference = scores_of(model, x, (0, 255)).mean(0)
    before, after = (np.abs(scores_of(m, x, (0, 255)).mean(0) - reference).sum() for m in (plain, again))
    assert after < before


def test_a_model_plain_int8_holds_is_left_as_it_is(cnn_files, images):  # noqa: F811
    s = search(cnn_files / "control.tflite", images, prepare=True)
    assert s.met and s.prepared == {} and s.kept == {}  # nothing lost: nothing tried


def test_relu6_is_no_join(tmp_path, images):  # noqa: F811
    from edge.converter.tfkeras import keras

    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, activation="relu6")(inputs)
    x = keras.layers.Conv2D(8, 3, activation="relu")(x)
    relu6 = to_tflite(keras.Model(inputs, keras.layers.Dense(4)(keras.layers.Flatten()(x))), "float32")
    assert list(equalize._pairs(equalize._Graph(relu6))) == []
    assert equalize.equalize(relu6, images[2]) == (relu6, [])


def test_a_start_that_could_not_run_is_said_so_in_the_summary():
    from edge.render import prepared_lines

    [line] = prepared_lines(
        {
            "equalized_pairs": [],
            "note": "no pair of operations to equalize",
            "bias_corrected_operations": 2,
            "tried": [{"start": "plain int8", "drop": 0.3}, {"start": "bias corrected", "drop": None, "error": "x"}],
            "chosen": None,
        }
    )
    assert "bias corrected failed" in line and "plain int8 0.3000" in line and "started from plain int8" in line


def test_depthwise_and_dense_pairs_are_equalized_and_compute_the_same(tmp_path, images):  # noqa: F811
    """Each kind of pair, a 300x channel in the first of three: conv -> depthwise, depthwise -> 1x1 conv (no
    activation between), 1x1 conv -> pooling -> dense, dense -> dense: each found and equalized, the same scores
    after."""
    from edge.converter.tfkeras import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, activation="relu")(keras.layers.Rescaling(1 / 255)(inputs))
    x = keras.layers.DepthwiseConv2D(3)(x)
    x = keras.layers.Conv2D(8, 1, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(8, activation="relu")(x)
    model = keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(x))
    conv, depthwise, pointwise, dense, _ = (layer for layer in model.layers if layer.get_weights())
    # (first, its output channel axis in Keras, second, its input channel axis)
    for first, out, second, take in (
        (conv, 3, depthwise, 2),
        (depthwise, 2, pointwise, 2),
        (dense, 1, model.layers[-1], 0),
    ):
        (w1, b1), (w2, *rest) = first.get_weights(), second.get_weights()
        np.moveaxis(w1, out, 0)[0] *= 300.0
        b1[0] *= 300.0
        np.moveaxis(w2, take, 0)[0] /= 300.0  # the second's weights from that channel
        first.set_weights([w1, b1])
        second.set_weights([w2, *rest])
    tflite = to_tflite(model, "float32")
    x_val, _, calibration = images
    equalized, pairs = equalize.equalize(tflite, calibration)
    assert [(p["types"], p["join"]) for p in pairs] == [
        (["CONV_2D", "DEPTHWISE_CONV_2D"], "relu"),
        (["DEPTHWISE_CONV_2D", "CONV_2D"], "none"),
        (["CONV_2D", "FULLY_CONNECTED"], "relu + MEAN"),
        (["FULLY_CONNECTED", "FULLY_CONNECTED"], "relu"),
    ]
    scaled = [pairs[i]["widest_before"] for i in (0, 1, 3)]  # the pairs given a 300x channel
    assert all(w > 10 for w in scaled), scaled
    assert np.abs(scores_of(equalized, x_val, (0, 255)) - scores_of(tflite, x_val, (0, 255))).max() <= 1e-4


def pooled_outlier(model: bytes, inputs, scale: float = 1e5) -> bytes:
    """The control CNN with its second convolution's busiest channel scaled by `scale` and the dense layer after
    the pooling undoing it: the same function in float, and an int8 file XNNPACK refuses to prepare."""
    g = equalize._Graph(model)
    second = [op for op in g.ops if op.kind == "CONV_2D"][1]
    dense = next(op for op in g.ops if op.kind == "FULLY_CONNECTED")
    channel = int(np.argmax(equalize.channel_stats(model, inputs, {second.outputs[0]})[second.outputs[0]][1]))
    kernel, bias, weights = (g.constant(t) for t in (second.inputs[1], second.inputs[2], dense.inputs[1]))
    assert kernel is not None and bias is not None and weights is not None
    kernel[channel] *= scale
    bias[channel] *= scale
    weights[:, channel] /= scale
    return g.bytes()


def test_an_int8_file_litert_cannot_run_starts_from_the_equalized_model_or_is_refused_saying_why(
    cnn_files,
    images,  # noqa: F811
    tmp_path,
):
    """Not "re-export it": the float file is fine; its plain int8 is what LiteRT's kernels refuse."""
    x, y, calibration = images
    path = tmp_path / "pooled.tflite"
    path.write_bytes(pooled_outlier((cnn_files / "control.tflite").read_bytes(), calibration))
    control = scores_of((cnn_files / "control.tflite").read_bytes(), x, (0, 255))
    assert np.abs(scores_of(path.read_bytes(), x, (0, 255)) - control).max() <= 1e-4
    s = search(path, images, prepare=True)
    first, equalized = s.prepared["tried"]
    assert (first["start"], first["drop"], s.prepared["chosen"]) == ("plain int8", None, "equalized")
    assert "XNNPACK" in first["error"] and s.met and equalized["drop"] <= 0.02
    with pytest.raises(EdgeError) as e:
        search(path, images, prepare=False)
    assert str(e.value).startswith("int8 of this model cannot run: LiteRT's int8 kernels refuse it (")
    assert "equalization off; nothing written: keep the float model" in str(e.value)


def test_an_operation_kept_float_takes_back_the_bias_corrected_for_int8_weights(cnn_files, images):  # noqa: F811
    """Bias correction answers the int8 weights' rounding: an operation the search keeps float has no such weights,
    and computes with the bias it had."""
    from edge.converter.selective import Task, _quantize, operations
    from edge.progress import Log

    x, y, calibration = images
    model = (cnn_files / "outlier.tflite").read_bytes()
    plain = quantize_int8(calibrate(model, calibration), "uint8")
    corrected, fixed = equalize.correct_bias(model, plain, calibration)
    first = equalize._Graph(model).ops[0]
    assert 0 in fixed and equalize.restore_biases(corrected, model, [0]) != corrected

    def float_bias(uncorrected) -> np.ndarray:
        task = Task(calibrate(corrected, calibration), "uint8", x, y, (0, 255), 1.0, np.eye(4)[y], 0.02, "float",
                    Log(enabled=False), True, uncorrected)  # fmt: skip
        g = equalize._Graph(_quantize(task, operations(corrected), {0: "float"}).model)
        [bias] = [b for op in g.ops if op.kind == "CONV_2D" and (b := g.constant(op.inputs[2])) is not None]
        return bias  # the one float convolution's

    original = equalize._Graph(model).constant(first.inputs[2])
    assert np.array_equal(float_bias(model), original)
    assert not np.array_equal(float_bias(None), original)  # as it was: the corrected bias, in float
