"""Metrics that grow one prediction at a time (live evaluation on the device, and `edge eval`).

Reading the metrics at any moment gives exactly what the batch functions in `edge.eval.metrics` give for
the predictions added so far: both are computed from the same confusion matrix and top-k counts.
"""

import numpy as np

from edge.eval.metrics import report, true_class_ranks


class Accumulator:
    def __init__(self, labels: list[str], top_k=(1,)):
        self.labels = list(labels)
        self.top_k = sorted({1, *top_k})
        self.cm = np.zeros((len(labels), len(labels)), dtype=np.int64)
        self.top_k_hits = dict.fromkeys(self.top_k, 0)

    def add(self, true: int, scores: np.ndarray) -> int:
        """Count one image of class `true` with the model's `scores`; returns the predicted class."""
        predicted = int(np.argmax(scores))
        self.cm[true, predicted] += 1
        rank = true_class_ranks([true], np.asarray(scores)[None])[0]
        for k in self.top_k:
            self.top_k_hits[k] += rank < k
        return predicted

    @property
    def n(self) -> int:
        return int(self.cm.sum())

    def report(self) -> dict:
        return report(self.cm, self.labels, self.top_k_hits)
