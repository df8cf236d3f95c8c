import cv2
import numpy as np
import pytest

from edge.images import BadImage, read_rgb


@pytest.fixture
def photo():
    """A real RGB photo-like image: a digit scan tinted per channel."""
    from sklearn.datasets import load_digits

    gray = cv2.resize((load_digits().images[0] * 15).astype(np.uint8), (40, 30), interpolation=cv2.INTER_CUBIC)
    return np.dstack([gray, gray // 2, 255 - gray])  # RGB


def test_rgb_png_comes_back_rgb(tmp_path, photo):
    cv2.imwrite(str(tmp_path / "a.png"), photo[..., ::-1])  # OpenCV writes BGR
    assert np.array_equal(read_rgb(tmp_path / "a.png"), photo)


def test_grayscale_becomes_three_channels(tmp_path, photo):
    cv2.imwrite(str(tmp_path / "g.png"), photo[..., 0])
    img = read_rgb(tmp_path / "g.png")
    assert img.shape == (30, 40, 3)
    assert np.array_equal(img[..., 0], photo[..., 0]) and np.array_equal(img[..., 2], photo[..., 0])


def test_rgba_drops_alpha(tmp_path, photo):
    bgra = np.dstack([photo[..., ::-1], np.full(photo.shape[:2], 7, np.uint8)])
    cv2.imwrite(str(tmp_path / "a.png"), bgra)
    assert np.array_equal(read_rgb(tmp_path / "a.png"), photo)


def test_16_bit_is_scaled_to_8_bit(tmp_path, photo):
    cv2.imwrite(str(tmp_path / "d.png"), photo[..., ::-1].astype(np.uint16) * 257)
    img = read_rgb(tmp_path / "d.png")
    assert img.dtype == np.uint8 and np.array_equal(img, photo)


def test_huge_image_is_read(tmp_path, photo):
    big = cv2.resize(photo, (6000, 4500), interpolation=cv2.INTER_NEAREST)
    cv2.imwrite(str(tmp_path / "big.jpg"), big)
    assert read_rgb(tmp_path / "big.jpg").shape == (4500, 6000, 3)


@pytest.mark.parametrize("content", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\0" * 40])
def test_corrupt_files_raise_bad_image(tmp_path, content):
    path = tmp_path / "x.png"
    path.write_bytes(content)
    with pytest.raises(BadImage, match="x.png"):
        read_rgb(path)


def test_truncated_jpeg_raises_bad_image(tmp_path, photo):
    ok, data = cv2.imencode(".jpg", photo)
    (tmp_path / "t.jpg").write_bytes(data.tobytes()[:20])
    with pytest.raises(BadImage):
        read_rgb(tmp_path / "t.jpg")
