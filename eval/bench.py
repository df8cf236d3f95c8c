"""`edge bench`: models an edge user chooses between, side by side on the same images.

`bench_files` compares existing bundles and .tflite files on one data set (`edge bench BUNDLE...`);
the variants of one trained model (`edge bench --model ...`) are trained by `edge.converter.variants` and
measured here. A file that fails gets a row saying why; the others still run. Results go to bench.json
and bench.csv.
"""

import csv
import io
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from edge.bundle import model_facts
from edge.errors import EdgeError
from edge.eval.evaluate import WARMUP, classify_all, evaluate
from edge.eval.latency import latency_stats
from edge.files import check_folder, write_atomic, write_json
from edge.folders import check_data
from edge.images import read_rgb
from edge.interpreter import resolve_threads
from edge.preprocess import resize
from edge.progress import Log
from edge.results import BenchResult
from edge.version import made_by

ROUNDS = 5  # latency rounds, models in turns
PER_ROUND = 50  # images per model per round
COLUMNS = (
    "name",
    "status",
    "reason",
    "bytes",
    "gzip_bytes",
    "accuracy",
    "macro_f1",
    "keras_accuracy",
    "agreement",
    "p50_ms",
    "fps",
    "sparsity",
)


def bench_files(
    models,
    data,
    labels=None,
    input_range=None,
    threads: int | None = None,
    rounds: int = ROUNDS,
    log: Log | None = None,
) -> BenchResult:
    """Evaluate each bundle or .tflite file on `data`. Agreement is with the first file that ran."""
    log = log or Log(enabled=False)
    if not models:
        raise EdgeError("nothing to compare: give bundle folders or .tflite files, or --model to train one")
    resolve_threads(threads)  # a bad value is the command's error, not one row's
    check_rounds(rounds)
    check_data(data)
    rows, reference, turns = {}, None, {}  # keyed by position: the same file may be given twice
    for i, model in enumerate(models):
        log(f"evaluating {model}")
        try:
            result = evaluate(model, data, labels=labels, input_range=input_range, threads=threads, log=log)
        except EdgeError as e:
            rows[i] = failed(str(model), e, log)
            continue
        predictions = dict(zip(result.paths, result.y_pred.tolist(), strict=True))
        reference = reference or predictions
        common = [p for p in predictions if p in reference]
        agreement = float(np.mean([predictions[p] == reference[p] for p in common])) if common else None
        r = result.report
        rows[i] = row(
            str(model), Path(r.model).read_bytes(), r.accuracy, r.macro["f1"], agreement, {**r.latency_ms, "fps": r.fps}
        )
        height, width = r.input["size"]
        images = np.stack([resize(read_rgb(p), height, width) for p in result.paths[:PER_ROUND]])
        turns[i] = (result.model.interpreter, images, result.model.input_range)
    time_in_turns(rows, turns, rounds, log)
    return BenchResult(
        **header("files", threads), data=str(data), agreement_with="the first file that ran", rows=list(rows.values())
    )


def check_rounds(rounds: int) -> int:
    if rounds < 0:
        raise EdgeError(f"--rounds {rounds} cannot be negative (0: time the models once, while evaluating them)")
    return rounds


def time_in_turns(rows: dict, turns: dict, rounds: int, log: Log) -> None:
    """Measure latency again, the models taking turns for `rounds` rounds of PER_ROUND images each, and
    pool each model's runs. A shared or throttling machine drifts (p50 of one file moved 0.40-0.67 ms
    between back-to-back runs here); in turns, drift hits every model alike and the comparison holds."""
    if rounds < 1:
        return
    pooled: dict[str, list[float]] = {name: [] for name in turns}
    bar = log.bar(rounds * len(turns), f"timing in turns ({rounds} rounds)")
    for turn in range(rounds):
        for name, (interpreter, images, input_range) in turns.items():
            times: list[float] = []
            for _ in classify_all(interpreter, ((x, None) for x in images), input_range, warmup=WARMUP, times=times):
                pass
            pooled[name] += times if turn == 0 else times[1 + WARMUP :]
            bar.update(1)
    bar.finish()
    for name, times in pooled.items():
        stats = latency_stats(times, WARMUP)
        rows[name].update(p50_ms=stats["p50"], fps=stats["fps"], latency_ms=stats)


def header(kind: str, threads) -> dict:
    return {
        "kind": kind,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **made_by(),
        "threads": threads,
    }


def row(name: str, tflite: bytes, accuracy: float, macro_f1: float, agreement, latency: dict) -> dict:
    facts = model_facts(tflite)
    return {
        "name": name,
        "status": "ok",
        "reason": None,
        "bytes": facts["bytes"],
        "gzip_bytes": facts["gzip_bytes"],
        "accuracy": accuracy,
        "macro_f1": macro_f1,
        "agreement": agreement,
        "p50_ms": latency["p50"],
        "fps": latency["fps"],
        "keras_accuracy": None,
        "sparsity": None,
        "latency_ms": latency,
    }


def failed(name: str, error: Exception, log: Log) -> dict:
    lines = str(error).strip().splitlines()
    first = lines[0] if lines else ""
    reason = first if isinstance(error, EdgeError) else f"{type(error).__name__}: {first}"[:300]
    log(f"  {name} failed: {reason}")
    return {**dict.fromkeys(COLUMNS), "name": name, "status": "failed", "reason": reason}


def write_results(result: BenchResult, out) -> tuple[Path, Path]:
    """bench.json (everything) and bench.csv (one row per variant or file), each written atomically."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(result.rows)
    return (
        write_json(out / "bench.json", result.to_json()),
        write_atomic(out / "bench.csv", table.getvalue().encode()),
    )


def check_out(out) -> Path:
    return check_folder(out, "--out", "bench.json and bench.csv")
