"""A drop judged against a budget (edge.eval.paired): McNemar's exact test and the interval against scipy's
own, and what each verdict says of what the images can and cannot show."""

import numpy as np
import pytest
from scipy import stats

from edge.eval.paired import ALPHA, judge


def pairs(n: int, lost: int, gained: int, both_wrong: int = 0):
    """(truth, reference's calls, the other's calls) on n images with those discordant counts."""
    truth, reference, other = np.zeros(n, int), np.zeros(n, int), np.zeros(n, int)
    other[:lost] = 1  # the reference right, the other wrong
    reference[lost : lost + gained] = 1  # the other way round
    reference[lost + gained : lost + gained + both_wrong] = other[lost + gained : lost + gained + both_wrong] = 2
    return truth, reference, other


@pytest.mark.parametrize(
    ("n", "lost", "gained", "max_drop"), [(120, 3, 0, 0.01), (1000, 40, 10, 0.01), (200, 9, 4, 0.0)]
)
def test_the_p_value_is_mcnemar_s_exact_test_at_the_budget(n, lost, gained, max_drop):
    v = judge(*pairs(n, lost, gained, both_wrong=5), max_drop)
    m = lost + gained
    expected = stats.binomtest(lost, m, (1 + n * max_drop / m) / 2, alternative="greater").pvalue
    assert v.p_value == pytest.approx(expected, rel=1e-9)
    assert (v.n, v.lost, v.gained, v.drop) == (n, lost, gained, pytest.approx((lost - gained) / n))


def test_the_interval_is_agresti_and_min_s_and_holds_the_drop():
    v = judge(*pairs(120, 3, 0), 0.01)
    b, c, total, z = 3.5, 0.5, 122, stats.norm.ppf(0.975)
    d, half = (b - c) / total, z * np.sqrt(b + c - (b - c) ** 2 / total) / total
    assert (v.low, v.high) == (pytest.approx(d - half), pytest.approx(d + half))
    assert v.low < 0 < v.drop < v.high  # three images of 120: no loss is within reach, nor one of 5%


def test_a_few_images_over_a_small_budget_are_chance_and_many_are_not():
    chance = judge(*pairs(120, 3, 0), 0.01)
    assert chance.drop > 0.01 and chance.p_value >= ALPHA and not chance.over
    assert chance.says() == (
        "drop 0.0250 (3 lost, 0 gained of 120 images; 95% interval -0.0072 to 0.0564): more than --max-drop 0.01 "
        "as measured, but 120 images cannot show it is (p = 0.34): the drop may be up to 0.0564; more validation "
        "images tell it closer"
    )
    shown = judge(*pairs(1000, 40, 10), 0.01)
    assert shown.over and shown.says().endswith("more than --max-drop 0.01, and 1000 images show it (p = 0.0022)")
    measured = judge(*pairs(120, 3, 0), 0.01, tested=False)
    assert measured.over and measured.says().endswith("more than --max-drop 0.01")


def test_a_drop_of_exactly_the_budget_holds_whatever_rounding_says():
    assert 0.95 - 0.94 > 0.01
    v = judge(*pairs(100, 1, 0), 0.01, tested=False, drop=0.95 - 0.94)  # 0.010000000000000009: one image of 100
    assert not v.over and v.says().endswith("within --max-drop 0.01")


def test_no_discordant_image_is_no_drop():
    v = judge(*pairs(50, 0, 0, both_wrong=10), 0.0)
    assert (v.drop, v.p_value, v.over) == (0.0, 1.0, False)
    assert v.to_json()["says"].startswith("drop 0.0000 (0 lost, 0 gained of 50 images")
