"""Whether the host can take a collected frame's JPEG: what it keeps, a browser must be able to show."""
import cv2
import numpy as np

from edge.frame_record import jpeg_bytes


def refusal(frames: list[dict]) -> tuple[int, str] | None:
    """The status and reason a POST of `frames` is refused for, or None: a frame whose JPEG does not decode.
    Decoded at 1/8 of its size, in grey: the whole stream is read, in a 64th of the memory."""
    for n, frame in enumerate(frames):
        data = np.frombuffer(jpeg_bytes(frame), np.uint8)
        if cv2.imdecode(data, cv2.IMREAD_REDUCED_GRAYSCALE_8) is None:
            return 422, f"frame {n}: 'jpeg' does not decode as a JPEG image"
    return None
