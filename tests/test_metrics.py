"""Every metric against scikit-learn, on many random label sets, including classes that are missing."""

import numpy as np
import pytest
from sklearn import metrics as sk

from edge.eval.accumulator import Accumulator
from edge.eval.metrics import confusion_matrix, top_k_accuracy, true_class_ranks


def random_case(seed):
    """Random labels and scores; some classes never occur in the truth, some are never predicted."""
    rng = np.random.default_rng(seed)
    n_classes = int(rng.integers(2, 9))
    n = int(rng.integers(1, 60))
    true_pool = rng.choice(n_classes, size=rng.integers(1, n_classes + 1), replace=False)
    y_true = rng.choice(true_pool, size=n)
    scores = rng.random((n, n_classes))
    muted = rng.choice(n_classes, size=rng.integers(0, n_classes), replace=False)
    scores[:, muted] -= 1  # these classes are never the argmax
    correct = rng.random(n) < 0.5  # make it better than chance, so the matrix is not all noise
    scores[correct, y_true[correct]] += 2
    return y_true, scores, [f"c{i}" for i in range(n_classes)]


def evaluated(y_true, scores, labels, top_k=(1,)) -> dict:
    """The metrics `edge eval` and `edge run` report for these predictions: one image at a time."""
    acc = Accumulator(labels, top_k)
    for truth, row in zip(y_true, scores, strict=True):
        acc.add(int(truth), row)
    return acc.report()


@pytest.mark.parametrize("seed", range(60))
def test_matches_scikit_learn(seed):
    y_true, scores, labels = random_case(seed)
    y_pred = scores.argmax(1)
    everything = list(range(len(labels)))
    r = evaluated(y_true, scores, labels, top_k=(2, 3))

    assert np.array_equal(r["confusion_matrix"], sk.confusion_matrix(y_true, y_pred, labels=everything))
    assert r["accuracy"] == pytest.approx(sk.accuracy_score(y_true, y_pred))
    p, rec, f1, support = sk.precision_recall_fscore_support(y_true, y_pred, labels=everything, zero_division=0)
    for c, label in enumerate(labels):
        got = r["per_class"][label]
        assert (got["precision"], got["recall"], got["f1"]) == pytest.approx((p[c], rec[c], f1[c]))
        assert got["support"] == support[c]
    for average in ("macro", "weighted", "micro"):
        want = sk.precision_recall_fscore_support(y_true, y_pred, average=average, zero_division=0)[:3]
        got = r[average]
        assert (got["precision"], got["recall"], got["f1"]) == pytest.approx(want), average
    if len(labels) > 2:  # scikit-learn's top-k takes one score column for two classes
        for k in (2, 3):
            want = sk.top_k_accuracy_score(y_true, scores, k=k, labels=everything)
            assert r["top_k_accuracy"][str(k)] == pytest.approx(want)


def test_zero_divisions_are_zero_and_said():
    labels = ["cat", "dog", "fox", "owl"]
    # cat: never predicted; fox: predicted but has no images; owl: neither
    cm = confusion_matrix([0, 0, 1, 1], [1, 2, 1, 1], 4)
    scores = np.eye(4)[[1, 2, 1, 1]]
    r = evaluated([0, 0, 1, 1], scores, labels)
    assert cm.tolist() == r["confusion_matrix"]
    assert r["per_class"]["cat"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2}
    assert r["per_class"]["fox"]["recall"] == 0.0 and r["per_class"]["owl"]["f1"] == 0.0
    assert not any(np.isnan(v) for c in r["per_class"].values() for v in c.values())
    notes = " | ".join(r["notes"])
    assert "never predicted, precision set to 0: cat" in notes
    assert "no images, recall set to 0: fox" in notes
    assert "left out of the averages: owl" in notes
    # macro over cat, dog, fox (owl left out): dog's F1 = 2*2/(2*2+1+0) = 0.8
    assert r["macro"]["f1"] == pytest.approx(0.8 / 3)


def test_ties_rank_like_argmax_so_top1_is_accuracy():
    scores = np.array([[5, 5, 1], [0, 7, 7], [3, 3, 3]], dtype=np.uint8)  # quantized outputs tie often
    y_true = np.array([1, 1, 2])
    assert true_class_ranks(y_true, scores).tolist() == [1, 0, 2]
    r = evaluated(y_true, scores, ["a", "b", "c"], top_k=(2,))
    assert r["top_k_accuracy"]["1"] == r["accuracy"] == pytest.approx(1 / 3)
    assert top_k_accuracy(y_true, scores, 2) == pytest.approx(2 / 3)
    assert top_k_accuracy(y_true, scores, 3) == 1.0


def test_empty_set_gives_zeros_not_errors():
    r = evaluated(np.zeros(0, int), np.zeros((0, 3)), ["a", "b", "c"])
    assert r["n"] == 0 and r["accuracy"] == 0.0 and r["macro"]["f1"] == 0.0
