import numpy as np
import pytest

from edge.converter.backbones import build_classifier, get_backbone
from edge.converter.datasets import load_split
from edge.converter.quantize import QUANTIZATIONS, calibration_images, to_tflite
from edge.eval.evaluate import classify_all
from edge.interpreter import input_detail, make_interpreter


@pytest.fixture(scope="module")
def trained(few_digits):
    """A small MobileNetV2 trained a few epochs on real digits, and its validation images."""
    split = load_split(few_digits, 32, val_split=0.25)
    clf = build_classifier(get_backbone("mobilenetv2"), 3, 32, weights="none", alpha=0.35)
    clf.model.compile("adam", "sparse_categorical_crossentropy")
    clf.model.fit(split.train_x.astype(np.float32), split.train_y, batch_size=12, epochs=3, verbose=0)
    return clf.model, split


def _tflite_scores(model_bytes, images):
    interpreter = make_interpreter(model_bytes)
    return np.stack([scores for scores, _ in classify_all(interpreter, ((image, None) for image in images))])


# Slow: the default suite compares float32 and dynamic exports with their Keras model in edge bench's test.
@pytest.mark.slow
@pytest.mark.parametrize("mode,tolerance", [("float32", 1e-4), ("float16", 2e-2), ("dynamic", 0.1)])
def test_float_io_modes_match_keras(trained, mode, tolerance):
    model, split = trained
    keras_scores = model.predict(split.val_x.astype(np.float32), verbose=0)
    scores = _tflite_scores(to_tflite(model, mode), split.val_x)
    assert np.abs(scores - keras_scores).max() < tolerance


@pytest.mark.slow  # three int8 conversions; the default suite's uint8 IO is the end-to-end fixture's
def test_int8_io_types_carry_their_quantization(trained):
    model, split = trained
    calibration = calibration_images(split.train_x, 16, seed=0)
    scores = {}
    for io_type, dtype, quant in [
        ("uint8", np.uint8, (1.0, 0)),
        ("int8", np.int8, (1.0, -128)),
        ("float32", np.float32, (0.0, 0)),
    ]:
        tflite = to_tflite(model, "int8", io_type, calibration)
        detail = input_detail(make_interpreter(tflite))
        assert detail["dtype"] == dtype and detail["quantization"] == quant
        scores[io_type] = _tflite_scores(tflite, split.val_x)
    # the same integer core behind three kinds of IO: the same answers
    assert np.array_equal(scores["uint8"].argmax(1), scores["int8"].argmax(1))
    assert np.array_equal(scores["uint8"].argmax(1), scores["float32"].argmax(1))
    keras_pred = model.predict(split.val_x.astype(np.float32), verbose=0).argmax(1)
    assert np.mean(scores["uint8"].argmax(1) == keras_pred) >= 0.75


def test_calibration_pins_the_full_pixel_range():
    images = np.full((5, 4, 4, 3), 100, np.uint8)  # a narrow range would give scale != 1
    sample = calibration_images(images, 3, seed=1)
    assert sample.dtype == np.float32 and len(sample) == 3
    assert sample.min() == 0.0 and sample.max() == 255.0
    assert np.count_nonzero(sample != 100) == 6  # two pixels of one image, nothing else


def test_table_lists_int8_io_types():
    assert QUANTIZATIONS["int8"].io_types[0] == "uint8"
    assert all(q.io_types == ("float32",) for name, q in QUANTIZATIONS.items() if name != "int8")
