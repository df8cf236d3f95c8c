"""`edge run --preview`: the frames in a window with the prediction drawn on them; number keys set the
ground truth from then on (1 = the first label, ..., 0 = nothing to evaluate), q or Esc ends the run.

Needs a display and an OpenCV with a GUI: pip's opencv-python-headless (the device default) has none.
"""

import os
import re
import sys

import cv2
import numpy as np

from edge.errors import EdgeError

WINDOW = "edge run"
QUIT = {ord("q"), 27}  # q, Esc


def has_gui() -> bool:
    gui = re.search(r"GUI:\s+(\S+)", cv2.getBuildInformation())
    return gui is not None and gui.group(1) != "NONE"


def check_display() -> None:
    """Fail before any work when no window can be shown."""
    if not has_gui():
        raise EdgeError(
            "--preview needs an OpenCV with a GUI and this one is headless: pip install opencv-python "
            "(or on a Pi, sudo apt install python3-opencv in a venv with --system-site-packages)"
        )
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise EdgeError(
            "--preview needs a display and none is set (DISPLAY/WAYLAND_DISPLAY): run it on the "
            "desktop, or over ssh -X, or leave --preview out"
        )


def key_action(key: int, labels: list[str]):
    """What a key press means: ("truth", class index or None), ("quit", None), or None for other keys."""
    if key in QUIT:
        return "quit", None
    if ord("0") <= key <= ord("9"):
        digit = key - ord("0")
        if digit == 0:
            return "truth", None
        if digit <= len(labels):
            return "truth", digit - 1
    return None


def overlay(rgb: np.ndarray, label: str, score: float, fps: float, truth: str | None) -> np.ndarray:
    """The frame as BGR for imshow, with prediction, FPS and the current truth written on it; green
    when the prediction matches the truth, red when it does not."""
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    scale = max(0.4, bgr.shape[1] / 640)
    colour = (255, 255, 255) if truth is None else (0, 200, 0) if truth == label else (0, 0, 255)
    lines = [f"{label} {score:.2f}", f"{fps:.1f} fps" + (f"  truth: {truth}" if truth is not None else "")]
    for row, text in enumerate(lines):
        origin = (8, int((row + 1) * 28 * scale))
        cv2.putText(
            bgr, text, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.8 * scale, (0, 0, 0), int(4 * scale) + 1, cv2.LINE_AA
        )
        cv2.putText(bgr, text, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.8 * scale, colour, int(2 * scale) or 1, cv2.LINE_AA)
    return bgr


class Preview:
    """The window. `show` returns the key pressed (255 for none)."""

    def __init__(self):
        check_display()
        cv2.namedWindow(WINDOW, cv2.WINDOW_NORMAL)

    def show(self, bgr: np.ndarray) -> int:
        cv2.imshow(WINDOW, bgr)
        return cv2.waitKey(1) & 0xFF

    def close(self) -> None:
        cv2.destroyWindow(WINDOW)
