import numpy as np
import pytest

from edge.eval.accumulator import Accumulator
from edge.eval.metrics import confusion_matrix, report, true_class_ranks
from tests.test_metrics import random_case


def batch(y_true, scores, labels, top_k) -> dict:
    """The metrics of a whole set of predictions at once, from the functions the host's reads and convert use."""
    cm = confusion_matrix(y_true, scores.argmax(axis=1), len(labels))
    ranks = true_class_ranks(y_true, scores)
    return report(cm, labels, {k: int(np.count_nonzero(ranks < k)) for k in top_k})


@pytest.mark.parametrize("seed", range(20))
def test_streaming_equals_batch_at_every_step(seed):
    y_true, scores, labels = random_case(seed)
    acc = Accumulator(labels, top_k=(2, 3))
    for i, (t, s) in enumerate(zip(y_true, scores, strict=True)):
        assert acc.add(int(t), s) == int(np.argmax(s))
        assert acc.n == i + 1
        assert acc.report() == batch(y_true[: i + 1], scores[: i + 1], labels, (1, 2, 3))
