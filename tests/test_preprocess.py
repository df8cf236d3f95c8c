import cv2
import numpy as np
import pytest

from edge.preprocess import jpeg_scale, output_to_scores, pixels_to_input, resize, shrink, to_rgb

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


@pytest.fixture(scope="module")
def photo():
    """A real photograph (scikit-learn's sample, 427x640 RGB), cropped to a camera's 640x480 by stretching."""
    from sklearn.datasets import load_sample_image

    return cv2.resize(load_sample_image("china.jpg"), (640, 480), interpolation=cv2.INTER_AREA)


@pytest.mark.parametrize(
    "frame,size,scale",
    [
        ((480, 640), (224, 224), 2),
        ((720, 1280), (224, 224), 2),
        ((480, 640), (96, 96), 4),
        ((480, 640), (48, 48), 8),
        ((1080, 1920), (48, 48), 8),
        ((224, 224), (224, 224), 1),
        ((100, 100), (224, 224), 1),
        ((480, 640), (300, 300), 1),
    ],
)
def test_jpeg_scale_is_the_largest_that_still_covers_the_input(frame, size, scale):
    assert jpeg_scale(*frame, *size) == scale


@pytest.mark.parametrize("size", [(480, 640), (720, 1280), (240, 320)])
def test_shrink_is_close_to_an_area_resize(photo, size):
    frame = cv2.resize(photo, size[::-1], interpolation=cv2.INTER_AREA)
    fast, exact = shrink(frame, 224, 224), resize(frame, 224, 224)
    assert fast.shape == exact.shape == (224, 224, 3)
    # a plain linear resize from 640 px aliases: it samples 2 of every 2.86 pixels and skips the rest
    linear = cv2.resize(frame, (224, 224), interpolation=cv2.INTER_LINEAR)
    difference = lambda a: np.abs(a.astype(int) - exact.astype(int)).mean()  # noqa: E731
    assert difference(fast) < 3 and (size == (240, 320) or difference(fast) < difference(linear) / 1.5)


def test_shrink_leaves_an_image_of_the_input_size_alone(photo):
    frame = photo[:224, :224]
    assert shrink(frame, 224, 224) is frame


def test_to_rgb_takes_jpeg_bytes_yuyv_and_bgr(photo):
    bgr = cv2.cvtColor(photo, cv2.COLOR_RGB2BGR)
    jpeg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].reshape(1, -1)  # as FFmpeg and V4L2 give it
    whole, half = to_rgb(jpeg), to_rgb(jpeg, 2)
    assert whole.shape == (480, 640, 3) and half.shape == (240, 320, 3)
    assert np.abs(whole.astype(int) - photo).mean() < 3  # RGB, not BGR: a swap would be off by tens
    assert np.abs(half.astype(int) - resize(photo, 240, 320)).mean() < 3
    yuyv = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_YUYV)
    assert yuyv.shape == (480, 640, 2) and np.abs(to_rgb(yuyv).astype(int) - photo).mean() < 4
    assert np.array_equal(to_rgb(bgr), photo)
    assert to_rgb(jpeg[:, :200]) is None or to_rgb(jpeg[:, :200]).shape == (480, 640, 3)  # a cut frame: no exception
