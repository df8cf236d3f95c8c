"""--preview: key presses, the overlay drawn on frames, and a clear refusal where no window can open."""

import cv2
import numpy as np
import pytest

from edge.errors import EdgeError
from edge.preview import check_display, has_gui, key_action, overlay

LABELS = ["0", "1", "7"]


@pytest.mark.parametrize(
    "key,action",
    [
        (ord("1"), ("truth", 0)),
        (ord("3"), ("truth", 2)),
        (ord("0"), ("truth", None)),
        (ord("4"), None),
        (ord("q"), ("quit", None)),
        (27, ("quit", None)),
        (255, None),
        (ord("x"), None),
    ],
)
def test_key_action(key, action):
    assert key_action(key, LABELS) == action


def test_overlay_colours_the_prediction_by_the_truth():
    rgb = np.full((240, 320, 3), 128, np.uint8)
    plain = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)

    def coloured(bgr, channel):  # pixels where one channel is strong and the others are not
        others = [c for c in range(3) if c != channel]
        return int(((bgr[..., channel] > 180) & (bgr[..., others].max(axis=-1) < 60)).sum())

    right, wrong, none = (overlay(rgb, "7", 0.9, 30.0, truth) for truth in ("7", "1", None))
    assert right.shape == plain.shape and not np.array_equal(right, plain)
    assert coloured(right, 1) > 50 and coloured(right, 2) == 0  # green when right (BGR)
    assert coloured(wrong, 2) > 50 and coloured(wrong, 1) == 0  # red when wrong
    assert coloured(none, 1) == coloured(none, 2) == 0


@pytest.mark.skipif(has_gui(), reason="this OpenCV has a GUI")
def test_headless_opencv_is_refused_before_any_work():
    with pytest.raises(EdgeError, match="--preview needs an OpenCV with a GUI.*pip install opencv-python"):
        check_display()
