"""Latency statistics: the first inference (allocation, delegate set-up, cold caches) apart from the
rest, then warm-up runs left out, then the steady state that a device keeps running at."""

import numpy as np


def latency_stats(times_ms, warmup: int = 0, batch: int = 1) -> dict:
    """`times_ms`: one entry per invoke, in order. Frames per second count images (`batch` per invoke).
    With too few runs for a steady state its fields are None."""
    times = np.asarray(times_ms, dtype=np.float64)
    steady = times[1 + warmup :]
    stats = {
        "first": float(times[0]) if len(times) else None,
        "warmup": min(warmup, max(len(times) - 1, 0)),
        "runs": len(steady),
        "batch": batch,
    }
    if not len(steady):
        return {**stats, "mean": None, "p50": None, "p90": None, "p99": None, "fps": None}
    p50, p90, p99 = np.percentile(steady, [50, 90, 99])
    mean = float(steady.mean())
    return {
        **stats,
        "mean": mean,
        "p50": float(p50),
        "p90": float(p90),
        "p99": float(p99),
        "fps": 1000.0 * batch / mean if mean > 0 else None,
    }
