"""Turning camera frames and image files into model input, the same way on host and device.

The model graph holds the backbone's own preprocessing (it takes RGB pixels); all that is left to do
outside it is colour order, resizing, and mapping pixels to the input tensor's dtype and quantization.
"""

import cv2
import numpy as np

# How `edge run` turns camera frames into the model's input size.
DECODES = {
    "fast": "JPEG frames decoded at 1/2, 1/4 or 1/8 size (in the decoder's inverse DCT) when that still covers "
    "the input, other frames averaged over 2x2 blocks likewise, then a linear resize for the last factor "
    "under 2: an area resize in steps, at a fraction of its cost",
    "full": "every frame decoded at full size and area-resized in one go, as the bundle's images were in training",
}
# imdecode flags for RGB at 1/1, 1/2, 1/4 and 1/8 size (the REDUCED flags carry the BGR colour bit)
JPEG_SCALES = {
    1: cv2.IMREAD_COLOR_RGB,
    **{
        f: (flag & ~cv2.IMREAD_COLOR) | cv2.IMREAD_COLOR_RGB
        for f, flag in (
            (2, cv2.IMREAD_REDUCED_COLOR_2),
            (4, cv2.IMREAD_REDUCED_COLOR_4),
            (8, cv2.IMREAD_REDUCED_COLOR_8),
        )
    },
}


def resize(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    """Stretch an image to height x width (area interpolation: no aliasing when shrinking)."""
    if rgb.shape[0] == height and rgb.shape[1] == width:
        return rgb
    return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)


def shrink(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    """`resize`, fast: each side halved while it stays at least the input's (a linear resize by exactly 2
    is the mean of each pair of pixels, as an area resize is, and ~10x faster than an area resize by 2.86,
    or by 2 along one side only), then linear interpolation for what is left, a factor under 2, where it
    barely aliases."""
    while True:
        fy, fx = (0.5 if have >= 2 * want else 1.0 for have, want in ((rgb.shape[0], height), (rgb.shape[1], width)))
        if fy == fx == 1.0:
            break
        rgb = cv2.resize(rgb, None, fx=fx, fy=fy, interpolation=cv2.INTER_LINEAR)
    if rgb.shape[0] == height and rgb.shape[1] == width:
        return rgb
    return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_LINEAR)


def jpeg_scale(frame_height: int, frame_width: int, height: int, width: int) -> int:
    """The JPEG decoder's largest reduction (1, 2, 4 or 8) whose frame still covers height x width."""
    return min(_power_of_two(frame_height // height), _power_of_two(frame_width // width))


def _power_of_two(ratio: int) -> int:
    return 8 if ratio >= 8 else 4 if ratio >= 4 else 2 if ratio >= 2 else 1


def delivered_as(frame: np.ndarray) -> str:
    """What a source handed over: "jpeg" bytes (a camera's MJPG or a video's packets, undecoded), "yuyv"
    (H x W x 2) or "bgr" (H x W x 3, what OpenCV decodes to)."""
    if frame.ndim == 1 or frame.shape[0] == 1:
        return "jpeg"
    return "yuyv" if frame.ndim == 3 and frame.shape[2] == 2 else "bgr"


def to_rgb(frame: np.ndarray, jpeg_scale: int = 1) -> np.ndarray | None:
    """A frame as a source hands it over (`delivered_as`), in RGB; JPEG bytes are decoded at 1/`jpeg_scale`
    size. None when JPEG bytes do not decode."""
    kind = delivered_as(frame)
    if kind == "jpeg":
        return cv2.imdecode(frame.reshape(-1), JPEG_SCALES[jpeg_scale])
    return cv2.cvtColor(frame, cv2.COLOR_YUV2RGB_YUYV if kind == "yuyv" else cv2.COLOR_BGR2RGB)


def pixels_to_input(pixels: np.ndarray, dtype, quantization, input_range=(0.0, 255.0)) -> np.ndarray:
    """Map uint8 RGB pixels to what an input tensor takes.

    `input_range` is the float range the model expects for pixels 0..255 (our bundles: 0..255, since
    their graphs normalise inside). Quantized inputs get q = x / scale + zero_point, from the
    interpreter's own parameters: feeding raw values to a quantized input gives all-one-class outputs.
    """
    lo, hi = input_range
    scale, zero_point = quantization
    dtype = np.dtype(dtype)
    if dtype == np.uint8 and (lo, hi) == (0.0, 255.0) and (scale, zero_point) == (1.0, 0):
        return pixels.astype(np.uint8, copy=False)  # our int8 bundles: raw pixels, no arithmetic
    x = pixels.astype(np.float32) * np.float32((hi - lo) / 255.0) + np.float32(lo)
    if dtype == np.float32 or not scale:
        return x.astype(dtype, copy=False)
    info = np.iinfo(dtype)
    q = np.round(x / np.float32(scale)) + zero_point
    return np.clip(q, info.min, info.max).astype(dtype)


def output_to_scores(raw: np.ndarray, quantization) -> np.ndarray:
    """Dequantize an output tensor to float scores."""
    scale, zero_point = quantization
    if raw.dtype == np.float32 or not scale:
        return raw.astype(np.float32, copy=False)
    return (raw.astype(np.float32) - zero_point) * np.float32(scale)
