import numpy as np
import pytest

from edge.eval.latency import latency_stats


def test_first_and_warmup_are_kept_out_of_the_steady_state():
    times = [50.0, 9.0, 8.0] + [2.0, 4.0] * 50  # cold start, two warm-up runs, then a steady 3 ms mean
    s = latency_stats(times, warmup=2)
    assert s["first"] == 50.0 and s["warmup"] == 2 and s["runs"] == 100
    assert s["mean"] == pytest.approx(3.0) and s["p50"] == pytest.approx(3.0)
    assert s["p90"] == pytest.approx(4.0) and s["p99"] == pytest.approx(4.0)
    assert s["fps"] == pytest.approx(1000 / 3)


def test_percentiles_follow_the_distribution():
    times = np.r_[100.0, np.arange(1, 101, dtype=float)]  # first, then 1..100 ms
    s = latency_stats(times)
    assert (s["p50"], s["p90"], s["p99"]) == pytest.approx((50.5, 90.1, 99.01))


def test_batches_count_images_per_second():
    assert latency_stats([5.0, 10.0, 10.0], batch=8)["fps"] == pytest.approx(800.0)


def test_too_few_runs_leave_the_steady_state_empty():
    s = latency_stats([7.0], warmup=5)
    assert s["first"] == 7.0 and s["runs"] == 0 and s["warmup"] == 0
    assert s["p50"] is None and s["fps"] is None
