"""A model's fingerprint: what its scores look like on the validation images, so that a device can tell,
without ground truth, when what its camera sees has drifted away from them (`edge.drift`).

Three numbers a frame, from its scores alone: the top-1 score, the margin between the first two, and the
entropy (divided by log(classes), so 0..1). Each gets a histogram whose bin edges are the validation values'
quantiles (so each bin starts with about as many images: the population stability index then weighs every
bin, not the one bin a confident model fills); the edges are stored, and every window is binned with them.
Beside them: how often each class is predicted, the mean top-1 score of the images predicted as each class,
and the number of images. numpy only: the device bins its frames with the same functions.
"""
import numpy as np

FORMAT_VERSION = 1  # of the fingerprint block: a device refuses another
# Quantile bins a histogram (fewer when scores tie, as int8 outputs do). Few, because a fingerprint is often of
# only a hundred images: each bin more adds to what two samples of one population differ by chance.
BINS = 5
STATISTICS = ("top1", "margin", "entropy")
SMOOTHING = 0.5  # added to every bin's count before comparing, so an empty bin costs much, not infinitely much


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
    inner = np.quantile(np.asarray(values, dtype=np.float64), np.linspace(0, 1, bins + 1)[1:-1],
                        method="lower")  # values that occur: quantized scores give edges at their steps
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
        histograms[name] = {"edges": edges,
                            "counts": np.bincount(bin_of(edges, values[:, column]), minlength=len(edges) + 1).tolist()}
    mean_score = [float(values[predicted == c, 0].mean()) if np.any(predicted == c) else None
                  for c in range(len(labels))]
    return {"format_version": FORMAT_VERSION, "model_sha256": model_sha256, "n": int(len(scores)),
            "labels": list(labels), "histograms": histograms,
            "classes": np.bincount(predicted, minlength=len(labels)).tolist(), "mean_score": mean_score}


def psi(expected, actual) -> float:
    """Population stability index of two histograms of counts over the same bins: sum (a - e) ln(a / e)
    over the bins' shares, each count smoothed by SMOOTHING. 0: the same; 0.1: a shift worth a look;
    0.25: a real one (the usual rule of thumb, for large samples)."""
    e = np.asarray(expected, dtype=np.float64) + SMOOTHING
    a = np.asarray(actual, dtype=np.float64) + SMOOTHING
    e, a = e / e.sum(), a / a.sum()
    return float(np.sum((a - e) * np.log(a / e)))


def psi_beyond_chance(expected, actual) -> float:
    """PSI less what two samples of these sizes from one population show on average, (bins - 1)(1/n_e + 1/n_a)
    (n times PSI is then about chi-squared), and not below 0: against a fingerprint of 100 images, windows of
    the very population it was made from would otherwise read 0.05-0.1 and often cross 0.25."""
    n_e, n_a = max(int(np.sum(expected)), 1), max(int(np.sum(actual)), 1)
    return max(0.0, psi(expected, actual) - (len(expected) - 1) * (1 / n_e + 1 / n_a))
