"""Size, accuracy and speed of each export of one trained model, and what caching features saves.

    python benchmarks/convert_bench.py                      # mobilenetv2@224 and xception@299
    python benchmarks/convert_bench.py --models mobilenetv2 --per-class 40 --epochs 2   # quick look

Data: scikit-learn's real digit scans (4 classes), trained from scratch (ImageNet weights cannot be
downloaded here). The variants come from `edge bench`: each is exported from the same trained Keras
model; the pruned one is that model pruned to 50% while fine-tuning for --prune-epochs. Latency: LiteRT,
2 threads, batch 1, p50 over the validation images after 5 warm-up runs (as `edge eval`). Ratios are
against the float32 / unpruned int8 files of the same run.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import edge  # noqa: E402
from edge.converter.demo import write_digits  # noqa: E402
from edge.converter.options import ConvertOptions  # noqa: E402
from edge.converter.pipeline import read_images  # noqa: E402
from edge.progress import Log  # noqa: E402

SIZES = {"mobilenetv2": 224, "xception": 299}
VARIANTS = "float32,float16,dynamic,int8,int8-pruned"


def bench_model(name: str, data: Path, args, log: Log) -> dict:
    """`edge bench` of every variant: one model trained from scratch, then pruned to 50% for the last."""
    started = time.perf_counter()
    result = edge.bench(
        (),
        data,
        variants=VARIANTS,
        model=name,
        weights="none",
        input_size=SIZES[name],
        epochs=args.epochs,
        fine_tune_epochs=args.prune_epochs,
        augment=False,
        batch_size=16,
        val_split=0.6,
        prune=0.5,
        threads=2,
        log=log,
    )
    return {**result.to_json(), "seconds": round(time.perf_counter() - started, 1)}


def bench_feature_cache(data: Path, args, log: Log) -> dict:
    """The head phase on a frozen backbone: features cached once vs recomputed every epoch."""
    from edge.converter.backbones import build_classifier, get_backbone
    from edge.converter.train import Fitter, set_trainable

    opts = ConvertOptions(
        model="mobilenetv2",
        data=data,
        weights="none",
        input_size=224,
        epochs=args.epochs,
        augment=False,
        batch_size=16,
        val_split=0.6,
    ).resolved()
    split = read_images(opts, log)
    fitter = Fitter(split, opts, None, log)
    timings = {}
    for way in ("cached", "recomputed"):
        clf = build_classifier(get_backbone("mobilenetv2"), len(split.classes), 224, weights="none")
        set_trainable(clf.backbone_layers, 0)
        start = time.perf_counter()
        phase = (
            fitter.head_on_features(clf, opts.epochs, opts.lr)
            if way == "cached"
            else fitter.full("head", clf.model, opts.epochs, opts.lr)[1]
        )
        timings[way] = {"seconds": round(time.perf_counter() - start, 2), "epochs": phase["epochs"]}
    timings["speedup"] = round(timings["recomputed"]["seconds"] / timings["cached"]["seconds"], 2)
    return timings


def print_table(result: dict) -> None:
    print(
        f"\n{result['model']} @ {result['input_size']}px: {result['images']['train']} training / "
        f"{result['images']['validation']} validation images, {result['seconds']} s in all"
    )
    print(f"{'variant':<13}{'bytes':>12}{'gzip':>12}{'keras acc':>11}{'acc':>8}{'agree':>8}{'p50 ms':>9}")
    for r in result["rows"]:
        if r["status"] != "ok":
            print(f"{r['name']:<13} failed: {r['reason']}")
            continue
        print(
            f"{r['name']:<13}{r['bytes']:>12,}{r['gzip_bytes']:>12,}{r['keras_accuracy']:>11.4f}"
            f"{r['accuracy']:>8.4f}{r['agreement']:>8.4f}{r['p50_ms']:>9.2f}"
        )
    by = {r["name"]: r for r in result["rows"]}
    f32, i8, pr = by["float32"], by["int8"], by["int8-pruned"]
    checks = [
        ("int8 file smaller than float32", f32["bytes"] / i8["bytes"], ">= 3.9x", f32["bytes"] / i8["bytes"] >= 3.9),
        (
            "int8 accuracy minus Keras (pp)",
            100 * (i8["accuracy"] - i8["keras_accuracy"]),
            ">= -0.5",
            i8["accuracy"] - i8["keras_accuracy"] >= -0.005,
        ),
        (
            "pruned int8 gzip smaller than int8 gzip",
            i8["gzip_bytes"] / pr["gzip_bytes"],
            ">= 1.4x",
            i8["gzip_bytes"] / pr["gzip_bytes"] >= 1.4,
        ),
        ("int8 faster than float32", f32["p50_ms"] / i8["p50_ms"], "(ratio)", True),
    ]
    for label, value, target, ok in checks:
        verdict = "" if target == "(ratio)" else ("PASS" if ok else "FAIL")
        print(f"  {label:<42}{value:>8.2f}  target {target:<9}{verdict}")
    print(f"  pruned int8 measured sparsity {pr['sparsity']:.3f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="mobilenetv2,xception")
    parser.add_argument("--per-class", type=int, default=160, help="digit scans per class (4 classes)")
    parser.add_argument("--epochs", type=int, default=6, help="training epochs from scratch (4 left BN unsettled)")
    parser.add_argument("--prune-epochs", type=int, default=4, help="epochs of the pruning fine-tune")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    log = Log(enabled=not args.quiet)
    data = write_digits(Path(tempfile.mkdtemp()) / "digits", per_class=args.per_class, size=64)
    results = {"models": [], "feature_cache": None}
    for name in args.models.split(","):
        results["models"].append(bench_model(name, data, args, log))
        print_table(results["models"][-1])
    results["feature_cache"] = bench_feature_cache(data, args, log)
    fc = results["feature_cache"]
    print(
        f"\nhead phase, mobilenetv2 @ 224, {args.epochs} epochs: cached features {fc['cached']['seconds']} s "
        f"({fc['cached']['epochs']} epochs), recomputed {fc['recomputed']['seconds']} s "
        f"({fc['recomputed']['epochs']} epochs): {fc['speedup']}x faster"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
