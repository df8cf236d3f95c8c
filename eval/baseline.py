"""Is a classifier better than guessing? Its accuracy against always answering the most common class (at
least chance), with a one-sided binomial test: on 12 images, 6 right is no proof; on 600, 40% is, for
four classes.
"""

import math

import numpy as np

ALPHA = 0.01  # below this chance of guessing as well, the model is better than guessing


def tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p): the chance that guessing at rate p gets k or more of n right."""
    if k <= 0:
        return 1.0
    if p <= 0:
        return 0.0
    if p >= 1:
        return 1.0
    logs = [
        math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * math.log(p) + (n - i) * math.log1p(-p)
        for i in range(k, n + 1)
    ]
    top = max(logs)
    return min(1.0, math.exp(top) * sum(math.exp(v - top) for v in logs))


def against_guessing(y_true: np.ndarray, right: np.ndarray, n_classes: int) -> dict:
    """The guessing baselines of a validation set and whether `right` (one bool an image) beats them."""
    n = len(y_true)
    counts = np.bincount(y_true, minlength=n_classes)
    majority = int(counts.argmax())
    rate = float(counts[majority] / n) if n else 0.0
    p_value = tail(int(np.sum(right)), n, max(rate, 1.0 / n_classes))
    return {
        "majority_class": majority,
        "majority_accuracy": rate,
        "chance": 1.0 / n_classes,
        "p_value": p_value,
        "weak": bool(p_value >= ALPHA),
    }
