"""Reports as the device makes them and the host checks them: compact, exact, and refused when they hold
what could not be served back, with the field named."""

import pytest

from edge.report import check_report, make_report, matrix, unservable
from tests.reports import window_summary


def test_a_report_is_compact_and_exact():
    labels = [f"class{c}" for c in range(50)]
    summary = window_summary(labels, [(3, 3), (3, 3), (3, 7), (12, 12)])
    summary["skipped"] = {"count": 30, "files": [{"path": f"{i}.jpg", "why": "corrupt"} for i in range(30)]}
    report = make_report(summary, "pi-kitchen", "run-0001", 0, "a" * 64, 1.8e9, 1.8e9 + 10)
    assert check_report(report) is None
    assert (matrix(report) == summary["confusion_matrix"]).all()
    assert sorted(report["confusion"][i : i + 3] for i in range(0, 9, 3)) == [[3, 3, 2], [3, 7, 1], [12, 12, 1]]
    assert set(report["per_class"]) == {"class3", "class7", "class12"}  # the classes the window saw
    assert report["skipped"]["count"] == 30 and len(report["skipped"]["files"]) == 20
    assert "confusion_matrix" not in report and report["labels"] == labels


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda r: r.update(confusion=[3, 3, 2, 3, 3, 2]), "'confusion' must hold each cell once"),
        (lambda r: r.update(confusion=[3, 3, 4]), "'confusion' must hold as many frames as 'evaluated'"),
        (lambda r: r.update(confusion=[3, 3, True]), "'confusion' must be the non-zero cells"),
        (lambda r: r.update(confusion=[3, 60, 4]), "'confusion' cells must name classes 0 to 49"),
        (lambda r: r.update(evaluated=10**9 + 1), "'evaluated' must be a count up to 1000000000"),
        (lambda r: r.update(format_version=1), "'format_version' must be 2"),
        (lambda r: r["latency_ms"]["inference"].update(p99=float("inf")), "'latency_ms' must be"),
        (lambda r: r["latency_ms"]["inference"].update(p50=10**400), "'latency_ms' must be"),
        (lambda r: r.update(fps=float("nan")), "'fps' must be"),
        (lambda r: r.update(model_version={"model": "digits", "version": 0}), "'model_version' must be {\"model\""),
        (lambda r: r.update(model_version={"model": "../x", "version": 2}), "'model_version' must be"),
        (lambda r: r.update(top1_mean=1.5), "'top1_mean' must be a number from 0 to 1 (the mean top-1 score) or null"),
        (
            lambda r: r["latency_ms"]["inference"].update({"\ud800": 1.0}),
            "a key in 'latency_ms.inference' is not valid",
        ),
        (lambda r: r["window"].update(end=10**30), "'window' must be"),
        (lambda r: r["per_class"]["class3"].update(note="\ud800"), "'per_class.class3.note' is not valid Unicode"),
        (lambda r: r.update({"\udfff": 1}), "a key in the report is not valid Unicode"),
        (lambda r: r.update(extra=[1, [2, 2**53 + 1]]), "'extra[1][1]' is an integer beyond +-2^53"),
        (
            lambda r: r.update(extra=[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]),
            "'extra[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]' nests deeper than 16 levels",
        ),
    ],
)
def test_what_the_host_refuses_is_named(change, message):
    report = make_report(
        window_summary([f"class{c}" for c in range(50)], [(3, 3), (3, 3)]),
        "pi",
        "run-0001",
        0,
        "a" * 64,
        1.8e9,
        1.8e9 + 10,
    )
    change(report)
    assert message in check_report(report)


def drift_block() -> dict:
    return {
        "frames": 2,
        "level": "too few",
        "psi": {"top1": 0.5, "margin": 0.4, "entropy": 0.3, "classes": 1.2},
        "thresholds": [0.1, 0.25],
        "min_frames": 100,
    }


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda d: None, None),
        (
            lambda d: d.update(level="alarm"),
            '\'drift\' must be {"frames": count, "level": one of ok, watch, drift, too few',
        ),
        (lambda d: d["psi"].update(top1=-0.1), "'drift' must be"),
        (lambda d: d["psi"].update(top1=float("nan")), "'drift' must be"),
        (lambda d: d["psi"].pop("classes"), "'drift' must be"),
        (lambda d: d.update(thresholds=[0.25, 0.1]), "'drift' must be"),
        (lambda d: d.update(frames=-1), "'drift' must be"),
        (lambda d: d.update(note="\ud800"), "'drift.note' is not valid Unicode"),
    ],
)
def test_a_drift_block_is_checked_when_a_report_has_one(change, message):
    summary = {**window_summary(["a", "b"], [(0, 0), (1, 0)]), "drift": drift_block()}
    report = make_report(summary, "pi", "run-0001", 0, "a" * 64, 1.8e9, 1.8e9 + 10)
    change(report["drift"])
    problem = check_report(report)
    assert problem is None if message is None else message in problem, problem


def test_anything_json_can_serve_back_is_servable():
    assert unservable({"a": [None, True, -0.0, 2**53, -(2**53), "é \u2028 \x00", {"b": []}]}) is None
