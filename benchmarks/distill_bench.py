"""Distillation: a MobileNetV2 alpha 0.35 student taught by an Xception bundle against the same student trained
alone, seed for seed, on scans none of them saw.

    python benchmarks/distill_bench.py                 # seeds 0-2 (about 25 minutes on 2 cores)
    python benchmarks/distill_bench.py --seeds 0       # quick look

Data: scikit-learn's real digit scans, all ten digits. The first 100 scans of each digit are the training
folders; every later scan (74-83 a digit) is the test set, which only `edge eval` reads. The teacher (Xception
from scratch, --weights none: no ImageNet weights offline) trains on all 100 labelled scans a digit. Two
settings for the student, each trained alone and with `--teacher`:

- "all labelled": the same 100 labelled scans a digit as the teacher;
- "20 labelled": 20 scans a digit keep their label, the other 80 go to _unlabelled/, which only the teacher labels.

Every model exports float32 (the file computes what Keras does): the table compares training, not quantization.
"""

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TRAIN_PER_DIGIT = 100
LABELLED = 20  # a digit, in the "20 labelled" setting
STUDENT = dict(weights="none", input_size=32, alpha=0.35, epochs=15, fine_tune_epochs=0, augment=False)
TEACHER = dict(weights="none", input_size=72, epochs=20, fine_tune_epochs=0, augment=False)


def few_labelled(data: Path, out: Path, keep: int) -> Path:
    """`data` with all but the first `keep` scans of each digit moved to _unlabelled/."""
    for folder in sorted(p for p in data.iterdir() if p.is_dir()):
        labelled, rest = sorted(folder.iterdir())[:keep], sorted(folder.iterdir())[keep:]
        for path in labelled:
            (out / folder.name).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, out / folder.name / path.name)
        for path in rest:
            (out / "_unlabelled").mkdir(parents=True, exist_ok=True)
            shutil.copy(path, out / "_unlabelled" / f"{folder.name}-{path.name}")
    return out


def convert(model: str, data: Path, out: Path, options: dict, seed: int, teacher: Path | None = None) -> dict:
    import edge

    start = time.perf_counter()
    s = edge.convert(model, data, out, quantize="float32", seed=seed, teacher=teacher, gain=False, **options)
    return {"bundle": s.bundle, "bytes": s.model["bytes"], "seconds": time.perf_counter() - start}


def on_test(bundle: str, test: Path) -> float:
    import edge

    return edge.evaluate(bundle, test).report.accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="0,1,2")
    args = parser.parse_args()
    from edge.converter.demo import write_digits

    seeds = [int(s) for s in args.seeds.split(",")]
    digits = tuple(range(10))
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        train = write_digits(tmp / "train", digits, per_class=TRAIN_PER_DIGIT, size=72)
        test = write_digits(tmp / "test", digits, per_class=None, size=72, skip=TRAIN_PER_DIGIT)
        few = few_labelled(train, tmp / "few", LABELLED)
        teacher = convert("xception", train, tmp / "teacher", {**TEACHER, "batch_size": 32}, seed=0)
        teacher_accuracy = on_test(teacher["bundle"], test)
        print(
            f"teacher: Xception {TEACHER['input_size']} px from scratch, {teacher['bytes'] / 1e6:.1f} MB float32, "
            f"test accuracy {teacher_accuracy:.4f} ({teacher['seconds']:.0f} s to train)\n",
            flush=True,
        )
        print("| student | labels | " + " | ".join(f"seed {s}" for s in seeds) + " | mean | spread | MB | s |")
        print("|---|---|" + "---:|" * (len(seeds) + 4))
        rows = {}
        for setting, data in (("all labelled", train), (f"{LABELLED} labelled", few)):
            for taught in (False, True):
                runs = [
                    convert(
                        "mobilenetv2",
                        data,
                        tmp / f"s-{setting}-{taught}-{seed}",
                        {**STUDENT, "batch_size": 16},
                        seed,
                        Path(teacher["bundle"]) if taught else None,
                    )
                    for seed in seeds
                ]
                accuracies = [on_test(r["bundle"], test) for r in runs]
                rows[(setting, taught)] = accuracies
                spread = max(accuracies) - min(accuracies)
                print(
                    f"| {'taught by Xception' if taught else 'alone'} | {setting} | "
                    + " | ".join(f"{a:.4f}" for a in accuracies)
                    + f" | {statistics.mean(accuracies):.4f} | {spread:.4f} | {runs[0]['bytes'] / 1e6:.2f} | "
                    f"{statistics.mean(r['seconds'] for r in runs):.0f} |",
                    flush=True,
                )
        print()
        for setting in ("all labelled", f"{LABELLED} labelled"):
            alone, with_teacher = (statistics.mean(rows[(setting, t)]) for t in (False, True))
            print(f"{setting}: taught - alone = {with_teacher - alone:+.4f} (mean over {len(seeds)} seeds)")
        print(json.dumps({"teacher": teacher_accuracy, **{f"{k[0]}|{k[1]}": v for k, v in rows.items()}}))


if __name__ == "__main__":
    main()
