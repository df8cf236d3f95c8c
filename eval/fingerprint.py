"""A model's fingerprint: what its scores look like on the validation images, so that a device can tell,
without ground truth, when what its camera sees has drifted away from them (`edge.drift`).

Three numbers a frame, from its scores alone: the top-1 score, the margin between the first two, and the
entropy (divided by log(classes), so 0..1). Each gets a histogram whose bin edges are the validation values'
quantiles (so each bin starts with about as many images: the population stability index then weighs every
bin, not the one bin a confident model fills); the edges are stored, and every window is binned with them.
Beside them: how often each class is predicted, the mean top-1 score of the images predicted as each class,
and the number of images. numpy only: the device bins its frames with the same functions.

A camera that dwells on a scene sends near-copies of one frame: a window of them holds fewer views than frames.
How many (`views`) comes from how often frames k apart fall in the same bin, beyond what independent frames
would; the window's PSI is then taken as that of so many frames (`psi_beyond_chance`).
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from edge.bundle import FINGERPRINT_VERSION  # a device refuses another

# Quantile bins a histogram (fewer when scores tie, as int8 outputs do). Few, because a fingerprint is often of
# only a hundred images: each bin more adds to what two samples of one population differ by chance.
BINS = 5
STATISTICS = ("top1", "margin", "entropy")
SMOOTHING = 0.5  # added to every bin's count before comparing, so an empty bin costs much, not infinitely much
# Frames apart that agreement is counted at (1..LAGS): a camera that dwells longer than this on one scene is
# taken to hold more views than it does. At 10 fps, 6 s.
LAGS = 64


def features(scores) -> np.ndarray:
    """(n, 3): top-1 score, margin to the second, and entropy / log(classes) of each row of class scores."""
    scores = np.asarray(scores, dtype=np.float64)
    classes = scores.shape[1]
    second, first = np.partition(scores, classes - 2, axis=1)[:, -2:].T
    p = np.clip(scores, 0.0, None)
    p = p / np.maximum(p.sum(axis=1, keepdims=True), 1e-12)  # quantized outputs sum to about 1, not 1
    logs = np.log(p, out=np.zeros_like(p), where=p > 0)
    entropy = -(p * logs).sum(axis=1) / np.log(classes)
    return np.stack([first, first - second, entropy], axis=1)


def quantile_edges(values, bins: int = BINS) -> list[float]:
    """The inner bin edges: the values' quantiles, each once (ties, as at int8's top score, merge bins)."""
    inner = np.quantile(
        np.asarray(values, dtype=np.float64), np.linspace(0, 1, bins + 1)[1:-1], method="lower"
    )  # values that occur: quantized scores give edges at their steps
    return [float(edge) + 0.0 for edge in np.unique(inner)]  # + 0.0: no -0.0 from an entropy of nothing


def bin_of(edges, values) -> np.ndarray:
    """The bin of each value: 0 below the first edge, len(edges) at or above the last."""
    return np.searchsorted(np.asarray(edges, dtype=np.float64), values, side="right")


def fingerprint(scores, labels: list[str], model_sha256: str) -> dict:
    """The fingerprint of a model from its scores on the validation images (rows in any order)."""
    scores = np.asarray(scores, dtype=np.float64)
    values = features(scores)
    predicted = scores.argmax(axis=1)
    histograms = {}
    for column, name in enumerate(STATISTICS):
        edges = quantile_edges(values[:, column])
        histograms[name] = {
            "edges": edges,
            "counts": np.bincount(bin_of(edges, values[:, column]), minlength=len(edges) + 1).tolist(),
        }
    mean_score = [
        float(values[predicted == c, 0].mean()) if np.any(predicted == c) else None for c in range(len(labels))
    ]
    return {
        "format_version": FINGERPRINT_VERSION,
        "model_sha256": model_sha256,
        "n": int(len(scores)),
        "labels": list(labels),
        "histograms": histograms,
        "classes": np.bincount(predicted, minlength=len(labels)).tolist(),
        "mean_score": mean_score,
    }


def psi(expected, actual) -> float:
    """Population stability index of two histograms of counts over the same bins: sum (a - e) ln(a / e)
    over the bins' shares, each count smoothed by SMOOTHING. 0: the same; 0.1: a shift worth a look;
    0.25: a real one (the usual rule of thumb, for large samples)."""
    e = np.asarray(expected, dtype=np.float64) + SMOOTHING
    a = np.asarray(actual, dtype=np.float64) + SMOOTHING
    e, a = e / e.sum(), a / a.sum()
    return float(np.sum((a - e) * np.log(a / e)))


def chance(expected, views: float) -> float:
    """What two samples from one population, the fingerprint's and one of `views` independent frames, differ by
    in PSI on average: (bins - 1)(1/n_e + 1/views) (n times PSI is about chi-squared with bins - 1 degrees)."""
    return (len(expected) - 1) * (1 / max(int(np.sum(expected)), 1) + 1 / max(views, 1.0))


def chance_sd(expected, views: float) -> float:
    """The standard deviation of the PSI of a window of `views` independent frames against the population it
    is drawn from, sqrt(2 (bins - 1)) / views: what windows differ by from window to window (the fingerprint's
    own error is the same for every window)."""
    return float(np.sqrt(2 * max(len(expected) - 1, 1)) / max(views, 1.0))


def psi_beyond_chance(expected, actual, views: float | None = None) -> float:
    """PSI less what chance gives on average, not below 0: against a fingerprint of 100 images, windows of the
    very population it was made from would otherwise read 0.05-0.1 and often cross 0.25. `views`: how many
    independent frames the window's counts are worth [all of them]; the counts are scaled to that many before
    smoothing, so ten copies of a frame weigh as one, against the smoothing too."""
    actual = np.asarray(actual, dtype=np.float64)
    frames = max(float(actual.sum()), 1.0)
    views = frames if views is None else views
    return max(0.0, psi(expected, actual * (views / frames)) - chance(expected, views))


def lag_agreement(bins, before) -> np.ndarray:
    """(LAGS, statistics): how many rows of `bins` (frames, statistics) have a statistic in the same bin as the
    frame k = 1..LAGS before them; `before` holds the LAGS frames before the first row (-1: none)."""
    windows = sliding_window_view(np.concatenate([before, bins]), LAGS + 1, axis=0)  # (frames, statistics, LAGS+1)
    return np.count_nonzero(windows[:, :, :-1] == windows[:, :, -1:], axis=0).T[::-1]


def views(counts, agreement) -> float | None:
    """How many independent frames a statistic's bin counts are worth: n / (1 + 2 sum (1 - k/n) rho_k), rho_k
    how much more often frames k apart share a bin than frames drawn independently from the same shares
    would (Cohen's kappa), summed up to the first lag where it is not positive. `agreement[k - 1]`: the frames
    that share a bin with the one k before. None when every frame is in one bin: it cannot tell."""
    counts = np.asarray(counts, dtype=np.float64)
    n = counts.sum()
    same = np.sum((counts / max(n, 1.0)) ** 2)  # independent frames' share of pairs in one bin
    if n < 2 or same >= 1.0:
        return None
    lags = np.arange(1, min(len(agreement), int(n) - 1) + 1)
    rho = (np.asarray(agreement[: len(lags)], dtype=np.float64) / (n - lags) - same) / (1.0 - same)
    last = np.flatnonzero(rho <= 0)
    kept = slice(0, last[0] if len(last) else len(rho))
    return float(n / (1 + 2 * np.sum(rho[kept] * (1 - lags[kept] / n))))
