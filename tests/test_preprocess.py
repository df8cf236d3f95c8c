import numpy as np
import pytest

from edge.preprocess import output_to_scores, pixels_to_input, resize

PIXELS = np.array([[[0, 1, 2], [127, 128, 255]]], dtype=np.uint8)


def test_uint8_input_with_unit_scale_takes_raw_pixels():
    out = pixels_to_input(PIXELS, np.uint8, (1.0, 0))
    assert out.dtype == np.uint8 and np.array_equal(out, PIXELS)


def test_int8_input_is_shifted_by_zero_point():
    out = pixels_to_input(PIXELS, np.int8, (1.0, -128))
    assert out.dtype == np.int8 and np.array_equal(out.astype(int), PIXELS.astype(int) - 128)


def test_quantized_input_uses_scale_and_zero_point_and_range():
    # a model expecting [-1, 1] with int8 input scale 1/128, zero point 0
    out = pixels_to_input(PIXELS, np.int8, (1 / 128, 0), input_range=(-1.0, 1.0))
    expected = np.clip(np.round((PIXELS / 127.5 - 1.0) * 128), -128, 127)
    assert np.array_equal(out, expected)


@pytest.mark.parametrize("lo,hi", [(0.0, 255.0), (0.0, 1.0), (-1.0, 1.0)])
def test_float_input_maps_pixels_to_range(lo, hi):
    out = pixels_to_input(PIXELS, np.float32, (0.0, 0), input_range=(lo, hi))
    assert out.dtype == np.float32
    assert out.min() == pytest.approx(lo) and out.max() == pytest.approx(hi)


def test_outputs_are_dequantized():
    raw = np.array([0, 128, 255], dtype=np.uint8)
    assert np.allclose(output_to_scores(raw, (1 / 256, 0)), [0, 0.5, 255 / 256])
    assert np.allclose(output_to_scores(np.array([-128, 127], np.int8), (1 / 256, -128)), [0, 255 / 256])


def test_resize_stretches_to_size():
    img = np.zeros((30, 40, 3), np.uint8)
    assert resize(img, 24, 16).shape == (24, 16, 3)
