"""Window summaries as `edge run` makes them, for the report tests (real metrics from the accumulator)."""

import numpy as np

from edge.eval.accumulator import Accumulator


def window_summary(labels, pairs, top_k=(1,)) -> dict:
    """A window of one frame a (truth, predicted) pair, the predicted class scored highest."""
    acc = Accumulator(labels, top_k)
    for truth, predicted in pairs:
        scores = np.full(len(labels), 0.01)
        scores[predicted] = 0.9
        acc.add(truth, scores)
    return {
        **acc.report(),
        "frames": len(pairs),
        "evaluated": len(pairs),
        "dropped": 0,
        "fps": 30.0,
        "skipped": {"count": 0, "files": []},
        "latency_ms": {"inference": {"p50": 4.0}, "frame": {"p50": 6.0}},
    }
