"""The fingerprint's statistics on score rows whose answers are known by hand."""

import math

import numpy as np
import pytest

from edge.eval.fingerprint import (
    BINS,
    LAGS,
    bin_of,
    features,
    fingerprint,
    lag_agreement,
    psi,
    psi_beyond_chance,
    quantile_edges,
    views,
)


def test_features_of_known_rows():
    rows = [[0.7, 0.2, 0.1, 0.0], [0.25, 0.25, 0.25, 0.25], [1.0, 0.0, 0.0, 0.0], [0.1, 0.6, 0.3, 0.0]]
    top1, margin, entropy = features(rows).T
    assert top1.tolist() == pytest.approx([0.7, 0.25, 1.0, 0.6])
    assert margin.tolist() == pytest.approx([0.5, 0.0, 1.0, 0.3])
    h = -(0.7 * math.log(0.7) + 0.2 * math.log(0.2) + 0.1 * math.log(0.1)) / math.log(4)
    assert entropy.tolist() == pytest.approx(
        [h, 1.0, 0.0, -(0.1 * math.log(0.1) + 0.6 * math.log(0.6) + 0.3 * math.log(0.3)) / math.log(4)]
    )


def test_quantized_scores_that_do_not_sum_to_one_are_normalized():
    assert features([[128 / 256, 128 / 256]])[0, 2] == pytest.approx(1.0)  # int8's 0.5 + 0.5 is exact; 0.498 is not
    assert features([[0.498, 0.498]])[0, 2] == pytest.approx(1.0)


def test_quantile_edges_merge_ties_and_bins_are_closed_below():
    assert len(quantile_edges(np.arange(100.0))) == BINS - 1
    assert quantile_edges([0.99] * 70 + [0.5, 0.6, 0.7] * 10, 10) == [0.5, 0.6, 0.7, 0.99]  # int8's top score
    assert bin_of([0.5, 0.9], [0.1, 0.5, 0.7, 0.9, 1.0]).tolist() == [0, 1, 1, 2, 2]


def test_psi_is_zero_for_the_same_shares_and_grows_with_a_shift():
    assert psi([10, 20, 30], [20, 40, 60]) == pytest.approx(0.0, abs=0.01)
    assert 0.1 < psi([50, 50], [70, 30]) < 0.25 < psi([50, 50], [90, 10])
    assert math.isfinite(psi([100, 0], [0, 100]))  # an empty bin costs much, not everything


def test_psi_beyond_chance_takes_off_what_samples_of_one_population_differ_by():
    rng = np.random.default_rng(0)
    shares = [0.4, 0.3, 0.2, 0.1]
    samples = ((rng.multinomial(100, shares), rng.multinomial(200, shares)) for _ in range(400))
    raw, beyond = zip(*[(psi(a, b), psi_beyond_chance(a, b)) for a, b in samples], strict=True)
    assert 0.035 < np.mean(raw) < 0.06  # 3 * (1/100 + 1/200) = 0.045
    assert np.mean(beyond) < 0.015 and min(beyond) == 0.0
    assert psi_beyond_chance([50, 50], [90, 10]) == pytest.approx(psi([50, 50], [90, 10]) - 0.02)


def test_a_fingerprint_counts_every_image_once():
    rows = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8]] * 5)
    made = fingerprint(rows, ["a", "b", "c"], "f" * 64)
    assert made["n"] == 20 and made["classes"] == [10, 5, 5] and made["model_sha256"] == "f" * 64
    assert made["mean_score"] == pytest.approx([0.75, 0.7, 0.8])
    for histogram in made["histograms"].values():
        assert sum(histogram["counts"]) == 20 and len(histogram["counts"]) == len(histogram["edges"]) + 1


def views_of(bins) -> float | None:
    """A statistic's views from its bins, its agreement counted 64 frames at a time as a window counts it."""
    before, agreement = np.full((LAGS, 1), -1), np.zeros((LAGS, 1), dtype=np.int64)
    for start in range(0, len(bins), 64):
        chunk = np.asarray(bins[start : start + 64]).reshape(-1, 1)
        agreement += lag_agreement(chunk, before)
        before = np.concatenate([before, chunk])[-LAGS:]
    return views(np.bincount(bins, minlength=5), agreement[:, 0])


def test_views_count_frames_drawn_apart_whole_and_frames_held_on_one_scene_once():
    rng = np.random.default_rng(0)
    scenes = rng.integers(0, 5, 60)
    assert 500 < views_of(rng.integers(0, 5, 600)) <= 700  # 600 frames, each its own
    assert 40 < views_of(np.repeat(scenes, 10)) < 90  # 60 scenes, each held 10 frames
    assert 10 < views_of(np.repeat(scenes[:20], 30)) < 35  # 20 held 30 frames
    assert views_of(np.full(300, 3)) is None  # one bin: nothing tells whether one scene or 300
    one = rng.integers(0, 5, 200)  # a statistic's agreement counts only frames of the window, not before
    assert lag_agreement(one[:, None], np.full((LAGS, 1), -1)).sum() == sum(
        np.sum(one[k:] == one[:-k]) for k in range(1, LAGS + 1)
    )


def test_a_window_of_copies_weighs_as_its_views():
    expected, window = [30, 25, 20, 15, 10], np.array([10, 3, 2, 2, 3])
    assert psi_beyond_chance(expected, window * 10, views=20) == pytest.approx(psi_beyond_chance(expected, window))
    assert psi_beyond_chance(expected, window * 10) > psi_beyond_chance(expected, window * 10, views=20)
