"""A stretch of frames (edge.windows.Tally): what its summary says of the scores the model gave."""

import numpy as np

from edge.capture import CaptureStats
from edge.windows import Tally


def test_the_summary_holds_the_mean_top1_score_of_its_frames():
    stats = CaptureStats()
    tally = Tally(["cat", "dog"], (1,), stats, warmup=0)
    assert tally.summary(stats, {})["top1_mean"] is None  # no frames: nothing to say
    for n, scores in enumerate(([0.9, 0.1], [0.3, 0.7], [0.55, 0.45])):
        tally.add(n % 2, np.asarray(scores, dtype=np.float32), 4.0, 6.0, float(n))
    assert abs(tally.summary(stats, {})["top1_mean"] - (0.9 + 0.7 + 0.55) / 3) < 1e-6
