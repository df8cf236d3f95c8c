"""edge.results: what the API returns is typed, and its to_json() is exactly what `--json` writes: the same keys in
the same order, a group present only sometimes left out when absent, a key that is null kept as null."""

import json
from dataclasses import fields

import numpy as np

import edge
from edge.bundle import read_bundle
from edge.eval.bench import write_results
from edge.eval.metrics import report
from edge.results import BenchResult, ConvertResult, DemoResult, EvalResult, Metrics, RunResult
from tests.cli import edge_cli

TIMED = ("latency_ms", "fps", "preprocess_ms")  # two runs differ only in these


def test_an_eval_result_is_what_eval_json_writes(e2e, digits):
    result = edge.evaluate(e2e.bundle, digits, threads=1).report
    written = json.loads(edge_cli("eval", e2e.bundle, "--data", digits, "--threads", 1, "--json", "-").stdout)
    made = result.to_json()
    assert isinstance(result, EvalResult) and list(made) == list(written)  # the keys, in order
    assert {k: v for k, v in made.items() if k not in TIMED} == {k: v for k, v in written.items() if k not in TIMED}
    assert "fingerprint" not in made  # only with --fingerprint
    assert (result.accuracy, result.n, result.per_class, result.source) == (
        made["accuracy"],
        made["n"],
        made["per_class"],
        "bundle",
    )
    assert EvalResult(**json.loads(json.dumps(made))) == result  # nothing lost on the way through JSON


def test_a_run_result_leaves_out_what_did_not_happen_and_keeps_nulls(e2e, digits):
    result = edge.run(e2e.bundle, digits / "2", truth="2", max_frames=5)
    made = result.to_json()
    assert isinstance(result, RunResult) and result.frames == made["frames"] == 5
    for absent in ("reporting", "collecting", "following", "model_version"):
        assert absent not in made and getattr(result, absent) is None
    assert made["drift"] == result.drift and result.drift["frames"] == 5  # the bundle has a fingerprint
    assert "source_mode" in made and made["source_mode"] is None  # a folder says nothing of a mode: null, not absent
    assert RunResult(**json.loads(json.dumps(made))) == result


def test_to_json_is_a_copy(e2e, digits):
    result = edge.run(e2e.bundle, digits / "1", truth="1", max_frames=3)
    made = result.to_json()
    made["notes"].append("changed")
    made["per_class"]["1"]["support"] = -1
    assert "changed" not in result.notes and result.per_class["1"]["support"] == 3


def test_eval_and_run_share_one_definition_of_the_metrics():
    """Metrics' fields are edge.eval.metrics.report's keys: the metrics eval and run both carry, declared once."""
    keys = list(report(np.array([[3, 1], [0, 2]]), ["a", "b"], {1: 5}))
    assert [f.name for f in fields(Metrics)] == keys
    assert issubclass(EvalResult, Metrics) and issubclass(RunResult, Metrics)


def test_a_convert_result_is_the_bundle_path_and_its_manifest(e2e):
    assert isinstance(e2e, ConvertResult)
    assert e2e.to_json() == {"bundle": e2e.bundle, **read_bundle(e2e.bundle).manifest}
    assert ConvertResult(**e2e.to_json()) == e2e


def test_a_bench_result_is_bench_json_and_a_demo_result_nests_its_parts(e2e, digits, tmp_path):
    result = edge.bench([e2e.bundle], digits, threads=1, rounds=0)
    json_file, _ = write_results(result, tmp_path)
    assert isinstance(result, BenchResult) and json.loads(json_file.read_text()) == result.to_json()
    assert [key for key in ("model", "input_size", "images", "training") if key in result.to_json()] == []  # variants'
    assert result.threads == result.to_json()["threads"] == 1 and result.rows[0]["status"] == "ok"
    evaluated = edge.evaluate(e2e.bundle, digits, threads=1).report
    demo = DemoResult(convert=e2e, eval=evaluated, test_data=str(digits))
    assert demo.to_json() == {"convert": e2e.to_json(), "eval": evaluated.to_json(), "test_data": str(digits)}
