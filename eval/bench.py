"""`edge bench`: the exports an edge user chooses between, side by side on the same images.

Either train one model and export it as several variants (`edge bench --model ...`), or compare
existing bundles and .tflite files on one data set (`edge bench BUNDLE...`). A variant or file that
fails gets a row saying why; the others still run. Results go to bench.json and bench.csv.
"""
import csv
import io
import platform
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

import edge
from edge.bundle import model_facts
from edge.errors import EdgeError, choose
from edge.files import write_atomic, write_json
from edge.images import read_rgb
from edge.interpreter import input_size, make_interpreter, resolve_threads
from edge.preprocess import resize
from edge.progress import Log
from eval.evaluate import WARMUP, classify_all, evaluate
from eval.latency import latency_stats


@dataclass(frozen=True)
class Variant:
    name: str
    quantize: str
    io_type: str
    pruned: bool = False  # pruned while fine-tuning the shared model further, then exported
    qat: bool = False  # quantization-aware training of the shared model, then exported


VARIANTS = {v.name: v for v in (
    Variant("float32", "float32", "float32"),
    Variant("float16", "float16", "float32"),
    Variant("dynamic", "dynamic", "float32"),
    Variant("int8", "int8", "uint8"),
    Variant("int8-pruned", "int8", "uint8", pruned=True),
    Variant("int8-qat", "int8", "uint8", qat=True),
)}
DEFAULT_VARIANTS = ("float32", "float16", "dynamic", "int8", "int8-pruned")
DEFAULT_SPARSITY = 0.5
ROUNDS = 5  # latency rounds, models in turns
PER_ROUND = 50  # images per model per round
COLUMNS = ("name", "status", "reason", "bytes", "gzip_bytes", "accuracy", "macro_f1", "keras_accuracy", "agreement",
           "p50_ms", "fps", "sparsity")


def parse_variants(text) -> list[str]:
    names = [v.strip() for v in (text.split(",") if isinstance(text, str) else text) if v.strip()]
    if not names:
        raise EdgeError("--variants is empty: give e.g. float32,int8")
    return list(dict.fromkeys(choose("variant", name, VARIANTS) for name in names))


def bench_variants(options, variants=DEFAULT_VARIANTS, threads: int | None = None, rounds: int = ROUNDS,
                   log: Log | None = None) -> dict:
    """Train `options.model` once, export each variant of it and evaluate every file on the validation
    images. Agreement is with the Keras model the file was exported from."""
    from convert.pipeline import check, export, fit, read_images
    from convert.train import prune_tune, train_qat

    log = log or Log(enabled=False)
    resolve_threads(threads)  # a bad value fails now, not after training
    names = parse_variants(variants)
    wants_pruning = any(VARIANTS[n].pruned for n in names)
    opts = replace(options, quantize="int8", io_type=None, qat=False,
                   prune=(options.prune or DEFAULT_SPARSITY) if wants_pruning else None).resolved()
    split = read_images(opts, log)
    model, training = fit(replace(opts, prune=None), split, log)
    trained = model.get_weights()
    exported, rows = {}, {}
    # Variants that train further go last, each starting again from the shared weights.
    for name in sorted(names, key=lambda n: VARIANTS[n].pruned or VARIANTS[n].qat):
        variant = VARIANTS[name]
        log(f"variant {name}")
        try:
            source = model
            if variant.pruned or variant.qat:
                model.set_weights(trained)
                if variant.pruned:
                    source, _ = prune_tune(model, split, opts, log)
                else:  # QAT of the unpruned model: nothing to preserve
                    source, _ = train_qat(model, split, replace(opts, prune=None), log)
            exported[name] = export(source, split, variant.quantize, variant.io_type, opts, log)[:2]
        except Exception as e:  # noqa: BLE001 -- one variant failing to convert must not sink the others
            rows[name] = _failed(name, e, log)
    # Every file is measured after all training has ended, so no training work competes for the cores.
    turns = {}
    for name, (tflite, keras_scores) in exported.items():
        metrics = check(tflite, keras_scores, split, opts.max_drop, log, threads)
        turns[name] = (make_interpreter(tflite, threads), split.val_x[:PER_ROUND], (0.0, 255.0))
        rows[name] = {**_row(name, tflite, metrics["tflite"]["accuracy"], metrics["tflite"]["macro_f1"],
                             metrics["agreement"], metrics["host_latency_ms"]),
                      "keras_accuracy": metrics["keras"]["accuracy"]}
        if VARIANTS[name].pruned:
            from convert.prune import tflite_sparsity

            rows[name]["sparsity"] = tflite_sparsity(tflite)["sparsity"]
    _time_in_turns(rows, turns, rounds, log)
    return {**_header("variants", threads), "model": opts.model, "input_size": opts.input_size,
            "data": str(opts.data), "images": {"train": len(split.train_y), "validation": len(split.val_y)},
            "agreement_with": "the Keras model each file was exported from", "training": training,
            "rows": [rows[n] for n in names]}


def bench_files(models, data, labels=None, input_range=None, threads: int | None = None, rounds: int = ROUNDS,
                log: Log | None = None) -> dict:
    """Evaluate each bundle or .tflite file on `data`. Agreement is with the first file that ran."""
    log = log or Log(enabled=False)
    if not models:
        raise EdgeError("nothing to compare: give bundle folders or .tflite files, or --model to train one")
    resolve_threads(threads)  # a bad value is the command's error, not one row's
    if not Path(data).is_dir():
        raise EdgeError(f"data folder {data} does not exist: give a folder with one sub-folder of images per class")
    rows, reference, turns = {}, None, {}  # keyed by position: the same file may be given twice
    for i, model in enumerate(models):
        log(f"evaluating {model}")
        try:
            result = evaluate(model, data, labels=labels, input_range=input_range, threads=threads, log=log)
        except EdgeError as e:
            rows[i] = _failed(str(model), e, log)
            continue
        predictions = dict(zip(result.paths, result.y_pred.tolist()))
        reference = reference or predictions
        common = [p for p in predictions if p in reference]
        agreement = float(np.mean([predictions[p] == reference[p] for p in common])) if common else None
        r = result.report
        rows[i] = _row(str(model), Path(r["model"]).read_bytes(), r["accuracy"], r["macro"]["f1"], agreement,
                           {**r["latency_ms"], "fps": r["fps"]})
        interpreter = make_interpreter(r["model"], threads)
        height, width = input_size(interpreter)
        images = np.stack([resize(read_rgb(p), height, width) for p in result.paths[:PER_ROUND]])
        turns[i] = (interpreter, images, tuple(r["input"]["range"]))
    _time_in_turns(rows, turns, rounds, log)
    return {**_header("files", threads), "data": str(data), "agreement_with": "the first file that ran",
            "rows": list(rows.values())}


def _time_in_turns(rows: dict, turns: dict, rounds: int, log: Log) -> None:
    """Measure latency again, the models taking turns for `rounds` rounds of PER_ROUND images each, and
    pool each model's runs. A shared or throttling machine drifts (p50 of one file moved 0.40-0.67 ms
    between back-to-back runs here); in turns, drift hits every model alike and the comparison holds."""
    if rounds < 1:
        return
    pooled = {name: [] for name in turns}
    bar = log.bar(rounds * len(turns), f"timing in turns ({rounds} rounds)")
    for turn in range(rounds):
        for name, (interpreter, images, input_range) in turns.items():
            times = []
            for _ in classify_all(interpreter, ((x, None) for x in images), input_range, warmup=WARMUP, times=times):
                pass
            pooled[name] += times if turn == 0 else times[1 + WARMUP:]
            bar.update(1)
    bar.finish()
    for name, times in pooled.items():
        stats = latency_stats(times, WARMUP)
        rows[name].update(p50_ms=stats["p50"], fps=stats["fps"], latency_ms=stats)


def _header(kind: str, threads) -> dict:
    return {"kind": kind, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "edge_version": edge.__version__, "threads": threads,
            "host": {"python": platform.python_version(), "machine": platform.machine()}}


def _row(name: str, tflite: bytes, accuracy: float, macro_f1: float, agreement, latency: dict) -> dict:
    facts = model_facts(tflite)
    return {"name": name, "status": "ok", "reason": None, "bytes": facts["bytes"], "gzip_bytes": facts["gzip_bytes"],
            "accuracy": accuracy, "macro_f1": macro_f1, "agreement": agreement, "p50_ms": latency["p50"],
            "fps": latency["fps"], "keras_accuracy": None, "sparsity": None, "latency_ms": latency}


def _failed(name: str, error: Exception, log: Log) -> dict:
    lines = str(error).strip().splitlines()
    first = lines[0] if lines else ""
    reason = first if isinstance(error, EdgeError) else f"{type(error).__name__}: {first}"[:300]
    log(f"  {name} failed: {reason}")
    return {**dict.fromkeys(COLUMNS), "name": name, "status": "failed", "reason": reason}


def write_results(result: dict, out) -> tuple[Path, Path]:
    """bench.json (everything) and bench.csv (one row per variant or file), each written atomically."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(result["rows"])
    return (write_json(out / "bench.json", result),
            write_atomic(out / "bench.csv", table.getvalue().encode()))


def check_out(out) -> Path:
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise EdgeError(f"--out {out} is a file: give a folder for bench.json and bench.csv")
    return out
