"""Does `edge run` keep up with the model? Frames per second of `edge run` on a video file against a
bare `invoke()` loop of the same model in the same run, and the runner's peak memory.

    python benchmarks/run_bench.py                       # MobileNetV2 int8 @ 224 and Xception int8 @ 299
    python benchmarks/run_bench.py --models mobilenetv2 --codecs mjpg --frames 300

The models are built here with untrained weights (speed does not depend on them) and exported as full
int8. The videos are real digit scans at the model's input size, in two codecs: MJPG, what USB cameras
send, and FFV1 (lossless), which costs ~5x more CPU to decode and shows what a heavy decoder takes from
the model when the interpreter has every core. `edge run` runs as its
own process, as on a device, and reports its own peak RSS and its pace after the first frame. The bare
loop sets one input and calls invoke() --frames times, timed as a whole; both use --threads threads.
Target: edge run >= 0.95 of the bare loop's frames per second.
"""
import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.interpreter import input_detail, make_interpreter  # noqa: E402
from edge.preprocess import pixels_to_input  # noqa: E402

SIZES = {"mobilenetv2": 224, "xception": 299}


def build(name: str, size: int, images: np.ndarray, out: Path) -> Path:
    from edge.converter.backbones import build_classifier, get_backbone
    from edge.converter.quantize import calibration_images, to_tflite

    clf = build_classifier(get_backbone(name), 4, size, weights="none")
    path = out / f"{name}-{size}-int8.tflite"
    path.write_bytes(to_tflite(clf.model, "int8", "uint8", calibration_images(images, 50, 0)))
    return path


def write_video(path: Path, images: np.ndarray, frames: int, codec: str) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec.upper()), 30.0, images.shape[2:0:-1])
    for i in range(frames):
        writer.write(cv2.cvtColor(images[i % len(images)], cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def bare_fps(model: Path, image: np.ndarray, frames: int, threads: int) -> float:
    interpreter = make_interpreter(model, threads)
    detail = input_detail(interpreter)
    interpreter.set_tensor(detail["index"], pixels_to_input(image[None], detail["dtype"], detail["quantization"]))
    for _ in range(5):
        interpreter.invoke()
    start = time.perf_counter()
    for _ in range(frames):
        interpreter.invoke()
    return frames / (time.perf_counter() - start)


def decode_cpu_ms(video: Path) -> float:
    """CPU milliseconds OpenCV takes to decode one frame: work the bare loop never does, which `edge run`
    has to fit in beside the interpreter's threads."""
    capture, frames = cv2.VideoCapture(str(video)), 0
    start = time.process_time()
    while capture.read()[0]:
        frames += 1
    return (time.process_time() - start) * 1000 / frames


def run_fps(model: Path, video: Path, labels: Path, threads: int) -> tuple[float, float, dict]:
    """`edge run` as a child process: (frames per second after the first, its peak RSS in MB, summary)."""
    r = subprocess.run([sys.executable, "-m", "edge.cli", "run", str(model), "--labels", str(labels), "--source",
                        str(video), "--threads", str(threads), "--json", "-"], capture_output=True, text=True,
                       check=True)
    summary = json.loads(r.stdout)
    return summary["fps"], summary["peak_rss_mb"], summary


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="mobilenetv2,xception")
    parser.add_argument("--codecs", default="mjpg,ffv1")
    parser.add_argument("--frames", type=int, default=500)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    from sklearn.datasets import load_digits

    work = Path(tempfile.mkdtemp())
    (work / "labels.txt").write_text("0\n1\n2\n3\n")
    scans = (load_digits().images[:100] * (255 / 16)).astype(np.uint8)
    results = []
    for name in args.models.split(","):
        size = SIZES[name]
        images = np.stack([np.dstack([cv2.resize(s, (size, size), interpolation=cv2.INTER_CUBIC)] * 3) for s in scans])
        model = build(name, size, images, work)
        for codec in args.codecs.split(","):
            video = write_video(work / f"{name}.{codec}.avi", images, args.frames, codec)
            bare, ours, rss = [], [], 0.0
            for _ in range(args.rounds):  # alternate, so drift on a shared machine hits both alike
                bare.append(bare_fps(model, images[0], args.frames, args.threads))
                fps, rss, summary = run_fps(model, video, work / "labels.txt", args.threads)
                ours.append(fps)
            results.append({"model": f"{name} int8 @ {size}", "video": codec, "frames": args.frames,
                            "bare_fps": float(np.median(bare)), "run_fps": float(np.median(ours)),
                            "ratio": float(np.median(ours) / np.median(bare)), "peak_rss_mb": rss,
                            "inference_p50_ms": summary["latency_ms"]["inference"]["p50"], "dropped": summary["dropped"],
                            "decode_cpu_ms": decode_cpu_ms(video)})
    print(f"\n{args.frames} video frames, {args.threads} threads, median of {args.rounds} alternating rounds")
    print(f"{'model':<24}{'video':>6}{'bare fps':>10}{'run fps':>10}{'ratio':>8}{'target':>9}{'run RSS MB':>12}"
          f"{'p50 ms':>9}{'decode CPU':>12}")
    for r in results:
        # decode CPU: per frame, as a share of the CPU time the bare loop's threads spend on a frame
        share = r["decode_cpu_ms"] * r["bare_fps"] / 1000 / args.threads
        print(f"{r['model']:<24}{r['video']:>6}{r['bare_fps']:>10.1f}{r['run_fps']:>10.1f}{r['ratio']:>8.3f}"
              f"{'PASS' if r['ratio'] >= 0.95 else 'FAIL':>9}{r['peak_rss_mb']:>12.0f}{r['inference_p50_ms']:>9.2f}"
              f"{share:>11.1%}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
