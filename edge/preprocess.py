"""Turning camera frames and image files into model input, the same way on host and device.

The model graph holds the backbone's own preprocessing (it takes RGB pixels); all that is left to do
outside it is colour order, resizing, and mapping pixels to the input tensor's dtype and quantization.
"""
import cv2
import numpy as np

# How a bundle's images are resized; written into edge.json so the device does what training did.
RESIZE = {"mode": "stretch", "interpolation": "area"}


def resize(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    """Stretch an image to height x width (area interpolation: no aliasing when shrinking)."""
    if rgb.shape[0] == height and rgb.shape[1] == width:
        return rgb
    return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)


def bgr_to_rgb(bgr: np.ndarray) -> np.ndarray:
    """OpenCV captures BGR; models take RGB."""
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


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
