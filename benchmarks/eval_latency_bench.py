"""Is `edge eval`'s latency honest? Its p50 against a bare loop of `invoke()` on the same interpreter.

    python benchmarks/eval_latency_bench.py                      # builds MobileNetV2 models (needs TensorFlow)
    python benchmarks/eval_latency_bench.py --models a.tflite bundle/   # existing files (device: no TensorFlow)

For each model, in the same run and on the same interpreter, alternating for --rounds rounds:
- edge eval: the timing core `edge eval` uses (`classify_all`), fed images read from files and resized
  between invokes exactly as `edge eval` does; each invoke timed (set input, invoke, copy output).
- bare: the input set once, then `invoke()` in a tight loop, each call timed; the loop's wall
  time / count, which has no per-call timer at all; and set input + invoke + copy output in a tight
  loop (`+io`), which splits the overhead into tensor copies and the effect of reading images between.
Overhead = edge eval p50 / bare p50 (1.00 = no overhead). Models built here have untrained weights:
latency does not depend on them.
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.eval.evaluate import WARMUP, classify_all  # noqa: E402
from edge.eval.latency import latency_stats  # noqa: E402
from edge.folders import scan  # noqa: E402
from edge.images import read_rgb  # noqa: E402
from edge.interpreter import input_detail, input_size, invoker, make_interpreter  # noqa: E402
from edge.model import load_model  # noqa: E402
from edge.preprocess import pixels_to_input, resize  # noqa: E402

BUILT = (("mobilenetv2", 224, 1.0, "float32"), ("mobilenetv2", 224, 1.0, "int8"), ("mobilenetv2", 96, 0.35, "int8"))


def build_models(out: Path, images: np.ndarray) -> list[tuple[str, Path, tuple]]:
    from edge.converter.backbones import build_classifier, get_backbone
    from edge.converter.quantize import calibration_images, to_tflite

    models = []
    for name, size, alpha, quantize in BUILT:
        clf = build_classifier(get_backbone(name), 4, size, weights="none", alpha=alpha)
        sized = np.stack([resize(image, size, size) for image in images])
        calibration = calibration_images(sized, 100, 0) if quantize == "int8" else None
        path = out / f"{name}-{size}-a{alpha}-{quantize}.tflite"
        path.write_bytes(to_tflite(clf.model, quantize, "uint8" if quantize == "int8" else "float32", calibration))
        models.append((path.stem, path, (0.0, 255.0)))
    return models


def eval_round(interpreter, paths, input_range) -> dict:
    height, width = input_size(interpreter)
    images = ((resize(read_rgb(p), height, width), None) for p in paths)
    times: list[float] = []
    for _ in classify_all(interpreter, images, input_range, warmup=WARMUP, times=times):
        pass
    return latency_stats(times, WARMUP)


def bare_round(interpreter, image, input_range, runs: int) -> dict:
    detail = input_detail(interpreter)
    tensor = pixels_to_input(image[None], detail["dtype"], detail["quantization"], input_range)
    interpreter.set_tensor(detail["index"], tensor)
    for _ in range(WARMUP + 1):
        interpreter.invoke()
    times: list[float] = []
    for _ in range(runs):
        start = time.perf_counter()
        interpreter.invoke()
        times.append((time.perf_counter() - start) * 1000)
    start = time.perf_counter()
    for _ in range(runs):
        interpreter.invoke()
    wall = (time.perf_counter() - start) * 1000 / runs
    call, copies = invoker(interpreter), []  # what edge eval times, minus reading images in between
    for _ in range(runs):
        start = time.perf_counter()
        call(tensor)
        copies.append((time.perf_counter() - start) * 1000)
    return {
        "p50": statistics.median(times),
        "mean": statistics.fmean(times),
        "wall_mean": wall,
        "io_p50": statistics.median(copies),
    }


def bench(name, path, input_range, paths, threads, rounds) -> dict:
    interpreter = make_interpreter(path, threads)
    height, width = input_size(interpreter)
    image = resize(read_rgb(paths[0]), height, width)
    ours, bare = [], []
    for _ in range(rounds):
        ours.append(eval_round(interpreter, paths, input_range))
        bare.append(bare_round(interpreter, image, input_range, len(paths)))
    result = {
        "model": name,
        "bytes": Path(path).stat().st_size,
        "images": len(paths),
        "rounds": rounds,
        "eval_p50": statistics.median(r["p50"] for r in ours),
        "eval_mean": statistics.median(r["mean"] for r in ours),
        "eval_p99": statistics.median(r["p99"] for r in ours),
        "bare_p50": statistics.median(r["p50"] for r in bare),
        "bare_mean": statistics.median(r["mean"] for r in bare),
        "bare_wall_mean": statistics.median(r["wall_mean"] for r in bare),
        "bare_io_p50": statistics.median(r["io_p50"] for r in bare),
    }
    result["overhead_p50"] = result["eval_p50"] / result["bare_p50"]
    result["overhead_mean"] = result["eval_mean"] / result["bare_wall_mean"]
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="*", help="bundle folders or .tflite files (0..255 input) [build three]")
    parser.add_argument("--images", type=int, default=300, help="images per round (real digit scans)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    # scikit-learn's digits: the only part that needs the host extra.
    from edge.converter.demo import write_digits

    work = Path(tempfile.mkdtemp())
    data = write_digits(work / "digits", per_class=-(-args.images // 4), size=64)
    paths = scan(data).paths[: args.images]
    if args.models:
        models = [(str(m), f.path, f.input_range) for m, f in ((m, load_model(m)) for m in args.models)]
    else:
        models = build_models(work, np.stack([read_rgb(p) for p in paths[:100]]))
    results = [bench(name, path, rng, paths, args.threads, args.rounds) for name, path, rng in models]

    print(f"\n{args.images} images x {args.rounds} rounds, {args.threads} threads; ms, median over rounds")
    print(
        f"{'model':<34}{'eval p50':>10}{'bare p50':>10}{'p50 ratio':>11}{'eval mean':>11}{'bare wall':>11}"
        f"{'mean ratio':>12}{'eval p99':>10}{'+io p50':>9}"
    )
    for r in results:
        print(
            f"{r['model'][-34:]:<34}{r['eval_p50']:>10.3f}{r['bare_p50']:>10.3f}{r['overhead_p50']:>11.3f}"
            f"{r['eval_mean']:>11.3f}{r['bare_wall_mean']:>11.3f}{r['overhead_mean']:>12.3f}{r['eval_p99']:>10.3f}"
            f"{r['bare_io_p50']:>9.3f}"
        )
    print("ratio = edge eval / bare invoke loop on the same interpreter (1.000 = no overhead)")
    print("+io p50 = set input + invoke + copy output in a tight loop: the timed call without images read between")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
