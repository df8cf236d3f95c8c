"""`edge bench`: variants of one trained model, and existing files, compared on the same images."""

import csv
import json
import shutil

import pytest
from click.testing import CliRunner

from edge.cli import cli
from edge.converter.variants import parse_variants
from edge.errors import EdgeError
from edge.eval.bench import bench_files, write_results
from tests.cli import edge_cli


def test_compares_files_and_keeps_going_past_a_broken_one(e2e, digits, tmp_path):
    bare = tmp_path / "copy.tflite"
    shutil.copy(e2e.bundle + "/model.tflite", bare)
    (tmp_path / "labels.txt").write_text("0\n1\n2\n3\n")
    (tmp_path / "broken.tflite").write_bytes(b"\x00" * 64)
    result = bench_files([e2e.bundle, tmp_path / "broken.tflite"], digits, threads=1)
    ok, broken = result.rows
    assert ok["status"] == "ok" and ok["agreement"] == 1.0 and ok["bytes"] == e2e.model["bytes"]
    assert ok["gzip_bytes"] == e2e.model["gzip_bytes"] and ok["p50_ms"] > 0 and ok["fps"] > 0
    assert broken["status"] == "failed" and "not a usable TFLite model" in broken["reason"]
    assert ok["latency_ms"]["runs"] == 5 * 49  # timed in 5 rounds of 50 images, the first of each left out
    json_file, csv_file = write_results(result, tmp_path / "out")
    assert json.loads(json_file.read_text())["rows"][1]["status"] == "failed"
    rows = list(csv.DictReader(csv_file.open()))
    assert [r["status"] for r in rows] == ["ok", "failed"] and float(rows[0]["accuracy"]) == ok["accuracy"]

    same = bench_files([bare, bare], digits, labels=tmp_path / "labels.txt", rounds=0)  # a bare file, twice
    assert [r["agreement"] for r in same.rows] == [1.0, 1.0]
    assert same.rows[1]["latency_ms"]["runs"] == 679  # no rounds: the evaluation pass's own timing
    assert same.rows[0]["accuracy"] == ok["accuracy"]


def bench_cli(data, out, variants):
    """`edge bench` in this process (TensorFlow is imported once per test session, not per run)."""
    args = [
        "bench",
        "--data",
        data,
        "--weights",
        "none",
        "--input-size",
        32,
        "--alpha",
        0.35,
        "--epochs",
        1,
        "--fine-tune-epochs",
        1,
        "--no-augment",
        "--batch-size",
        16,
        "--threads",
        1,
        "--variants",
        variants,
        "--out",
        out,
    ]
    r = CliRunner().invoke(cli, list(map(str, args)))
    assert r.exit_code == 0, r.output
    return json.loads((out / "bench.json").read_text()), r.output


def test_variants_share_one_trained_model(few_digits, tmp_path):
    """float32 and dynamic-range exports of one tiny model, through the CLI (float16: -m slow)."""
    result, output = bench_cli(few_digits, tmp_path, "float32,dynamic")
    rows = {row["name"]: row for row in result["rows"]}
    assert list(rows) == ["float32", "dynamic"]
    assert all(row["status"] == "ok" for row in rows.values()), rows
    assert rows["float32"]["agreement"] == 1.0  # the float32 file computes what its Keras model does
    assert rows["dynamic"]["agreement"] >= 0.8 and rows["dynamic"]["bytes"] < 0.4 * rows["float32"]["bytes"]
    assert result["images"] == {"train": 39, "validation": 9}
    for word in ("variant", "dynamic", "macro F1", "bench.csv"):
        assert word in output
    # the verdict edge convert gives: a weak variant is named, with its baseline
    weak = [name for name, row in rows.items() if row["baseline"]["weak"]]
    assert [line.split(":")[0] for line in output.splitlines() if "WEAK" in line] == weak


@pytest.mark.slow
def test_a_pruned_variant_is_smaller_compressed(few_digits, tmp_path):
    result, output = bench_cli(few_digits, tmp_path, "float32,int8-pruned")
    rows = {row["name"]: row for row in result["rows"]}
    assert rows["int8-pruned"]["sparsity"] == pytest.approx(0.5, abs=0.02)
    assert rows["int8-pruned"]["gzip_bytes"] < rows["float32"]["gzip_bytes"] / 4
    assert "measured sparsity 0.5" in output


@pytest.mark.slow
def test_quantization_aware_variant(few_digits, tmp_path):
    result, _ = bench_cli(few_digits, tmp_path, "int8,int8-qat")
    int8, qat = result["rows"]
    assert int8["status"] == qat["status"] == "ok", result["rows"]
    # an int8 file either way, laid out by two tools: the converter's (QAT) was 5.0% larger than the quantizer's
    assert qat["bytes"] == pytest.approx(int8["bytes"], rel=0.1) and qat["sparsity"] is None


def test_unknown_variant_suggests_a_close_one():
    with pytest.raises(EdgeError, match="did you mean int8"):
        parse_variants("float32,int9")


@pytest.mark.parametrize(
    "args,message",
    [
        (["--variants", "fp33"], "unknown variant"),
        (["{bundle}", "--epochs", "3"], "--epochs is for training"),
        (["--labels", "{bundle}/labels.txt"], "for bare .tflite arguments"),
        (["{bundle}", "--out", "{bundle}/labels.txt"], "is a file"),
        (["{bundle}", "--data", "{bundle}/nowhere"], "does not exist"),
    ],
)
def test_bad_options(e2e, digits, args, message):
    args = [a.format(bundle=e2e.bundle) for a in args]
    r = edge_cli("bench", "--data", digits, *args)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_variants_help_names_the_table():
    from edge.converter.variants import DEFAULT_VARIANTS, VARIANTS

    text = CliRunner().invoke(cli, ["bench", "--help"], terminal_width=400).output
    assert all(name in text for name in VARIANTS)
    assert set(VARIANTS) - set(DEFAULT_VARIANTS) == {"int8-qat"} and "[all but int8-qat]" in text
