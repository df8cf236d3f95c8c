import numpy as np
import pytest

from edge.eval.accumulator import Accumulator
from edge.eval.metrics import classification_report
from tests.test_metrics import random_case


@pytest.mark.parametrize("seed", range(20))
def test_streaming_equals_batch_at_every_step(seed):
    y_true, scores, labels = random_case(seed)
    acc = Accumulator(labels, top_k=(2, 3))
    for i, (t, s) in enumerate(zip(y_true, scores)):
        assert acc.add(int(t), s) == int(np.argmax(s))
        assert acc.n == i + 1
        assert acc.report() == classification_report(y_true[:i + 1], scores[:i + 1], labels, top_k=(2, 3))
