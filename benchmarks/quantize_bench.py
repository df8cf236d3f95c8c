"""Does int8 keep an accuracy budget, and what does keeping it cost? For each model: plain int8's drop, the
drop after the search (`--max-drop`), the operations kept float, and bytes and p50 latency of the chosen
file against plain int8, the TFLite converter's int8 and float32 (timed in turns, as `edge bench` times
them, on scans no model saw). The search's time is set against one plain export and evaluation.

    python benchmarks/quantize_bench.py                   # ~4 min on 2 cores
    python benchmarks/quantize_bench.py --models cnn-outlier,cnn-control   # ~1 min

Models, all trained here from scratch on scikit-learn's digit scans (120 a class; 30 a class validate the
budget; the rest, about 30 a class, are the unseen test set):
- cnn-control: a two-convolution CNN at 48 px.
- cnn-outlier: the same CNN changed in a way that keeps every float output and breaks per-tensor int8
  activations. One channel of the first convolution is scaled up 1000x (weights and bias), and the second
  convolution's weights from that channel down as much: ReLU(a*x) = a*ReLU(x) for a > 0, so float computes
  the same. In int8 the first convolution's output shares one scale, sized for the scaled channel, and
  the other channels fall into its lowest steps.
- mobilenetv2: MobileNetV2 at 96 px.
- mobilenetv3small: MobileNetV3Small at 96 px (hard-swish activations).

Targets: the budget held on every model; where nothing is kept, size and latency no worse than the
converter's int8 (p50 ratio >= 0.95); the search within 3x of one plain export and evaluation.
"""

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MODELS = ("cnn-control", "cnn-outlier", "mobilenetv2", "mobilenetv3small")
MAX_DROP = 0.01


def write_data(work: Path) -> tuple[Path, Path, Path]:
    from edge.converter.demo import write_digits

    return (
        write_digits(work / "train", per_class=120, size=96),
        write_digits(work / "val", per_class=30, size=96, skip=120),
        write_digits(work / "test", per_class=None, size=96, skip=150),
    )


def train(name: str, train_dir: Path, val_dir: Path):
    """(the Keras model, its input size)."""
    if name.startswith("cnn"):
        from tests.models import add_outlier, train_cnn

        model, _ = train_cnn(train_dir, size=48)
        if name == "cnn-outlier":
            add_outlier(model)
        return model, 48
    from edge.converter.options import ConvertOptions
    from edge.converter.pipeline import fit, read_images
    from edge.progress import Log

    opts = ConvertOptions(
        model=name, data=train_dir, val=val_dir, weights="none", input_size=96, epochs=8, fine_tune_epochs=0
    ).resolved()
    model, _ = fit(opts, read_images(opts, Log(enabled=False)), Log(enabled=False))
    return model, 96


def measure(name: str, work: Path, data, rounds: int, max_drop: float) -> dict:
    import edge
    from edge.converter.datasets import load_split
    from edge.converter.quantize import calibrate, calibration_images, quantize_int8, to_tflite
    from edge.converter.selective import keep_budget, scores_of

    train_dir, val_dir, test_dir = data
    model, size = train(name, train_dir, val_dir)
    train_x = load_split(train_dir, size, val_split=0.01, seed=0).train_x
    val = load_split(val_dir, size, val_split=0.5, seed=0)
    val_x, val_y = np.concatenate([val.train_x, val.val_x]), np.concatenate([val.train_y, val.val_y])
    calibration = calibration_images(train_x, 200, seed=0)

    # One plain export and evaluation, as `edge convert` did before it kept a budget.
    started = time.perf_counter()
    float_model = to_tflite(model, "float32")
    plain = quantize_int8(calibrate(float_model, calibration), "uint8")
    scores_of(plain, val_x, (0, 255))
    plain_seconds = time.perf_counter() - started
    reference = float(np.mean(scores_of(float_model, val_x, (0, 255)).argmax(1) == val_y))
    started = time.perf_counter()
    search = keep_budget(calibrate(float_model, calibration), "uint8", val_x, val_y, (0, 255), reference, max_drop)
    search_seconds = time.perf_counter() - started  # calibration included, as the budget path runs it
    # The TFLite converter's own post-training int8, what edge used before the LiteRT Quantizer (the
    # converter path `to_tflite` keeps for quantization-aware models; this model is not one)
    converter = to_tflite(model, "int8", "uint8", calibration, qat=True)

    files = {}
    for kind, data_ in (
        ("float32", float_model),
        ("converter-int8", converter),
        ("plain-int8", search.plain_model),
        ("budget-int8", search.model),
    ):
        if kind == "budget-int8" and not search.kept:
            continue  # the plain int8 file itself: timing it twice would only show the noise
        files[kind] = work / f"{name}-{kind}.tflite"
        files[kind].write_bytes(data_)
    bench = edge.bench(list(files.values()), test_dir, labels=work / "labels.txt", rounds=rounds)
    rows = {Path(r["name"]).stem.removeprefix(f"{name}-"): r for r in bench.rows}
    rows.setdefault("budget-int8", rows["plain-int8"])
    return {
        "model": name,
        "validation_images": int(len(val_y)),
        "float_accuracy": reference,
        "plain_drop": search.plain["drop"],
        "final_drop": search.drop,
        "met": search.met,
        "kept": len(search.kept),
        "operations": len(search.operations),
        "kept_types": sorted({search.operations[i].type for i in search.kept}),
        "plain_seconds": round(plain_seconds, 2),
        "search_seconds": round(search_seconds, 2),
        "search_ratio": round(search_seconds / plain_seconds, 2),
        "files": rows,
    }


def report(results: list[dict], cpu: str, max_drop: float) -> str:
    from edge.render import table

    lines = [f"validation (the budget, --max-drop {max_drop}; drops against float32):"]
    head: tuple[str, ...] = (
        "model",
        "float",
        "plain drop",
        "final drop",
        "held",
        "kept",
        "search s",
        "plain export s",
        "ratio",
    )
    lines.append(
        table(
            [head]
            + [
                (
                    r["model"],
                    f"{r['float_accuracy']:.4f}",
                    f"{r['plain_drop']:+.4f}",
                    f"{r['final_drop']:+.4f}",
                    "yes" if r["met"] else "NO",
                    f"{r['kept']}/{r['operations']}" + (f" {','.join(r['kept_types'])}" if r["kept_types"] else ""),
                    f"{r['search_seconds']:.1f}",
                    f"{r['plain_seconds']:.1f}",
                    f"{r['search_ratio']:.2f}x",
                )
                for r in results
            ]
        )
    )
    lines += ["", f"unseen test scans, p50 in turns ({cpu}, 2 threads):"]
    head = ("model", "file", "accuracy", "bytes", "p50 ms", "p50 / plain int8", "p50 / converter int8")
    rows: list[tuple] = [head]
    for r in results:
        files = r["files"]
        for kind in ("float32", "converter-int8", "plain-int8", "budget-int8"):
            f = files[kind]
            rows.append(
                (
                    r["model"],
                    kind if kind != "budget-int8" or r["kept"] else f"{kind} (= plain)",
                    f"{f['accuracy']:.4f}",
                    f"{f['bytes']:,}",
                    f"{f['p50_ms']:.3f}",
                    f"{f['p50_ms'] / files['plain-int8']['p50_ms']:.2f}",
                    f"{f['p50_ms'] / files['converter-int8']['p50_ms']:.2f}",
                )
            )
    lines.append(table(rows))
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--rounds", type=int, default=5, help="latency rounds, the files in turns")
    parser.add_argument("--max-drop", type=float, default=MAX_DROP)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    from edge.version import cpu_name

    work = Path(tempfile.mkdtemp())
    try:
        data = write_data(work)
        (work / "labels.txt").write_text("0\n1\n2\n3\n")
        results = []
        for name in args.models.split(","):
            print(f"{name} ...", flush=True)
            results.append(measure(name, work, data, args.rounds, args.max_drop))
    finally:
        shutil.rmtree(work)
    print()
    print(report(results, cpu_name(), args.max_drop))
    if args.json:
        args.json.write_text(
            json.dumps({"cpu": cpu_name(), "max_drop": args.max_drop, "results": results}, indent=2, default=str)
        )


if __name__ == "__main__":
    main()
