"""A rollout's guard (edge.server.guard): each limit judged on reports, the reason in numbers."""

import pytest

from edge.errors import OptionError
from edge.server.guard import Guard, expected, measure, parse_guard, verdict
from tests.reports import window_summary


def reports(right=9, top1=0.9, p50=4.0, levels=("ok",) * 4):
    """Four window summaries of 40 frames, as reports carry them."""
    found = []
    for level in levels:
        summary = window_summary(["cat", "dog"], [(0, 0)] * (4 * right) + [(0, 1)] * (4 * (10 - right)))
        summary["latency_ms"]["inference"]["p50"] = p50
        found.append({**summary, "top1_mean": top1, "drift": {"level": level}})
    return found


def test_a_version_as_good_as_before_holds():
    assert verdict(Guard(), measure(reports()), measure(reports()), "m@2") == []


@pytest.mark.parametrize(
    "new,reason",
    [
        (reports(top1=0.5), "mean top-1 score 0.500 under m@2 against 0.900 before (a drop over 0.1)"),
        (reports(right=5), "field accuracy 0.500 on 160 frames under m@2 against 0.900 before (a drop over 0.05)"),
        (reports(p50=8.0), "median inference p50 8.00 ms under m@2 against 4.00 ms before (over 1.5x)"),
        (
            reports(levels=("drift", "drift", "ok", "too few")),
            "67% of the judged windows at drift under m@2 against 0% before",
        ),
    ],
)
def test_each_limit_fails_a_worse_version_with_its_numbers(new, reason):
    assert verdict(Guard(), measure(new), measure(reports()), "m@2") == [reason]


def test_a_drop_the_rest_of_the_fleet_saw_too_is_not_the_new_version_s():
    """Dusk: top-1 falls from 0.9 to 0.6 on the devices that kept the old version as on the canaries."""
    before = expected(measure(reports()), then=measure(reports()), now=measure(reports(top1=0.6)), min_frames=100)
    assert verdict(Guard(), measure(reports(top1=0.6)), before, "m@2") == []
    assert verdict(Guard(), measure(reports(top1=0.6)), measure(reports()), "m@2")  # without the rest: failed
    assert verdict(Guard(), measure(reports(top1=0.3)), before, "m@2") == [
        "mean top-1 score 0.300 under m@2 against 0.600 expected (0.900 before, as the rest of the fleet went from "
        "0.900 to 0.600) (a drop over 0.1)"
    ]
    slower = expected(measure(reports()), measure(reports()), measure(reports(p50=8.0)), 100)
    assert slower["latency_p50_ms"] == 8.0 and verdict(Guard(), measure(reports(p50=8.0)), slower, "m@2") == []
    assert expected(measure(reports()), measure(reports()), measure(reports(top1=0.1)), 1000) == measure(reports())


def test_too_few_frames_are_not_judged_and_a_metric_without_data_is_left_out():
    assert "fewer than the 200 needed" in verdict(Guard(min_frames=200), measure(reports()), measure(reports()), "m")[0]
    unsure = [{k: v for k, v in r.items() if k != "top1_mean"} for r in reports(top1=0.1)]
    assert verdict(Guard(), measure(unsure), measure(reports()), "m@2") == []


def test_guard_text_names_its_limits_and_refuses_others():
    assert parse_guard("top1_drop=0.2, latency_ratio=2") == Guard(top1_drop=0.2, latency_ratio=2.0)
    assert parse_guard(None) == Guard()
    with pytest.raises(OptionError, match="no limit 'top1'. did you mean top1_drop"):
        parse_guard("top1=0.2")
    with pytest.raises(OptionError, match="--guard latency_ratio=0.5: give a number at least 1"):
        parse_guard("latency_ratio=0.5")
    with pytest.raises(OptionError, match="--guard top1_drop=x: give NAME=NUMBER"):
        parse_guard("top1_drop=x")
