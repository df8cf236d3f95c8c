"""Does `edge run`'s drift level tell a change in the scene from noise, and what does watching it cost?

    python benchmarks/drift_bench.py                 # about 5 min on 2 cores
    python benchmarks/drift_bench.py --window 300 --seeds 100

1. A bundle made as the tests' e2e (MobileNetV2 alpha 0.35 at 48 px, full int8, from scratch on scikit-learn's
   digit scans 0-3), on all scans but 60 a class drawn at random (seeded), which stay unseen: the same writers
   as the training and validation scans. `edge convert` fingerprints it on its validation scans.
2. The model's scores for every unseen scan, as it is and under each change: half the light, three quarters of
   the light, a blur (sigma 1.5 px), a rotation by 25 degrees, and scans of digits 4-9 (classes it never saw).
3. False alarms: a long in-distribution stream, windows of --window frames drawn from the unseen scans in a
   seeded random order (a camera that sees them in turn), each judged as `edge run` judges a window
   (edge.drift: a frame's bins, a window's PSI against the fingerprint): the share at watch and at drift.
   And a camera that dwells: the unseen scans in rounds of a seeded order, each held --hold frames with a
   camera's jitter and flicker (tests/test_drift.py's `held`), in consecutive windows.
4. Windows to detect: for each change and seed, 10 in-distribution windows, then the change from the middle of
   a window on; the windows from the one the change starts in to the first at drift (1: that very window).
   The same for the dwelling camera: its in-distribution stream, then the changed scans held as well, each
   from a seeded scan of its stream on.
5. Cost: `edge run` on a video with the fingerprint and without it (the same bundle, its fingerprint removed),
   alternating, median of --rounds; the tiny 48-px model is the worst case, as drift's cost a frame is fixed.
"""

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import edge  # noqa: E402
from edge.converter.demo import write_digits  # noqa: E402
from edge.drift import Drift  # noqa: E402
from edge.eval.evaluate import classify_all  # noqa: E402
from edge.folders import scan  # noqa: E402
from edge.images import read_rgb  # noqa: E402
from edge.model import load_model  # noqa: E402
from edge.preprocess import resize  # noqa: E402
from edge.render import table  # noqa: E402
from edge.version import cpu_name  # noqa: E402
from tests.bundles import E2E_OPTIONS  # noqa: E402
from tests.test_drift import held  # noqa: E402

CHANGES = {
    "half the light": lambda x: (x * 0.5).astype(np.uint8),
    "3/4 of the light": lambda x: (x * 0.75).astype(np.uint8),
    "blur (sigma 1.5 px)": lambda x: cv2.GaussianBlur(x, (0, 0), 1.5),
    "rotated 25 degrees": lambda x: cv2.warpAffine(
        x, cv2.getRotationMatrix2D((24, 24), 25, 1.0), (48, 48), borderMode=cv2.BORDER_REPLICATE
    ),
}
BEFORE = 10  # in-distribution windows before each change
UNSEEN = 60  # scans a class held out
ROUNDS = 10, 3  # of the dwelling camera's scans: in distribution, and under each change


def scores_of(model, images) -> np.ndarray:
    return np.stack([s for s, _ in classify_all(model.interpreter, ((x, None) for x in images))])


def judged(drift: Drift, scores: np.ndarray, order) -> dict:
    """The drift block of one window: the frames whose scores are in `order`, counted as edge run counts them."""
    counts = drift.counts()
    for i in order:
        counts.add(scores[i])
    return drift.judge(counts)


def level_shares(camera: str, window: int, blocks: list[dict]) -> tuple:
    """A row of the false alarms' table: the share of windows at each level."""
    levels = [block["level"] for block in blocks]
    views = [block["views"] for block in blocks if "views" in block]  # the drift before views had none
    return (
        camera,
        f"{window} frames",
        f"{len(levels):,}",
        f"{statistics.median(views):g}" if views else "-",
        *(f"{levels.count(level) / len(levels):.2%}" for level in ("ok", "watch", "drift", "too few")),
    )


def dwelling(images, hold: int, rounds: int, rng) -> list:
    """A camera that holds each image `hold` frames, the images in `rounds` rounds of a random order."""
    return [frame for _ in range(rounds) for i in rng.permutation(len(images)) for frame in held(images[i], hold, rng)]


def drawn(clean, changed, window, rng, most) -> np.ndarray:
    """A stream of frames drawn at random: BEFORE and a half windows of `clean`, then `most` of `changed`."""
    return np.concatenate(
        [
            clean[rng.integers(0, len(clean), BEFORE * window + window // 2)],
            changed[rng.integers(0, len(changed), most * window)],
        ]
    )


def dwelt(hold):
    """As `drawn`, for streams of held frames: each part taken in order from a random scan of its stream on."""

    def cut(scores, frames, rng):
        return np.take(scores, np.arange(frames) + hold * rng.integers(0, len(scores) // hold), axis=0, mode="wrap")

    return lambda clean, changed, window, rng, most: np.concatenate(
        [cut(clean, BEFORE * window + window // 2, rng), cut(changed, most * window, rng)]
    )


def windows_to_detect(drift, stream, window, most=20) -> dict:
    """In-distribution windows, then the change from the middle of a window on: windows from the one it starts
    in to the first at watch and at drift (None: not within `most`)."""
    found: dict[str, int | None] = {"watch": None, "drift": None}
    for w in range(BEFORE, BEFORE + most):
        level = judged(drift, stream, range(w * window, (w + 1) * window))["level"]
        if level in ("watch", "drift") and found["watch"] is None:
            found["watch"] = w - BEFORE + 1
        if level == "drift":
            found["drift"] = w - BEFORE + 1
            break
    return found


def edge_run_fps(model, video) -> float:
    r = subprocess.run(
        [sys.executable, "-m", "edge.cli", "run", str(model), "--source", str(video), "--threads", "1", "--json", "-"],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(r.stdout)["fps"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--window",
        type=int,
        nargs="+",
        default=[100, 200, 300],
        help="frames a window; the smallest is also the fewest judged (--drift-min-frames)",
    )
    parser.add_argument("--windows", type=int, default=2000, help="in-distribution windows for the false alarms")
    parser.add_argument("--seeds", type=int, default=50, help="streams a change")
    parser.add_argument("--frames", type=int, default=6000, help="frames of the video for the cost")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--hold", type=int, default=10, help="frames the dwelling camera holds each scan")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp())
    photos, unseen = write_digits(work / "photos", per_class=None, size=48), work / "unseen"
    rng = np.random.default_rng(0)
    for folder in sorted(photos.iterdir()):  # later scans are other writers': a random draw keeps them alike
        files = sorted(folder.iterdir())
        (unseen / folder.name).mkdir(parents=True)
        for i in rng.permutation(len(files))[:UNSEEN]:
            shutil.move(files[i], unseen / folder.name / files[i].name)
    novel = write_digits(work / "novel", digits=(4, 5, 6, 7, 8, 9), per_class=None, size=48)
    started = time.perf_counter()
    summary = edge.convert(
        "mobilenetv2",
        photos,
        work / "bundle",
        **E2E_OPTIONS,
    )
    print(
        f"bundle: validation accuracy {summary.metrics['tflite']['accuracy']:.4f} on "
        f"{summary.fingerprint['n']} scans (the fingerprint's), made in {time.perf_counter() - started:.0f} s"
    )
    model = load_model(work / "bundle", threads=2)
    drift = Drift(summary.fingerprint, min_frames=min(args.window))
    clean_images = [resize(read_rgb(p), 48, 48) for p in scan(unseen, summary.labels).paths]
    streams = {"none (unseen scans)": clean_images}
    streams.update({name: [change(x) for x in clean_images] for name, change in CHANGES.items()})
    streams["digits 4-9 (unknown classes)"] = [resize(read_rgb(p), 48, 48) for p in scan(novel).paths]
    scores = {name: scores_of(model, images) for name, images in streams.items()}
    rng = np.random.default_rng(1)
    held_scores = {
        name: scores_of(model, dwelling(images, args.hold, ROUNDS[name != "none (unseen scans)"], rng))
        for name, images in streams.items()
    }
    clean = scores["none (unseen scans)"]
    unseen_accuracy = np.mean(clean.argmax(axis=1) == scan(unseen, summary.labels).labels)
    print(
        f"{len(clean)} unseen scans (accuracy {unseen_accuracy:.4f}), {len(scores['digits 4-9 (unknown classes)'])} "
        f"of digits 4-9; thresholds {drift.thresholds[0]}/{drift.thresholds[1]}, min frames {drift.min_frames}\n"
    )

    rows = [("camera", "window", "in-distribution windows", "views (median)", "ok", "watch", "drift", "too few")]
    for window in args.window:
        rng = np.random.default_rng(window)
        blocks = [rng.integers(0, len(clean), window) for _ in range(args.windows)]
        rows.append(level_shares("sees each scan once", window, [judged(drift, clean, b) for b in blocks]))
    dwelt_clean = held_scores["none (unseen scans)"]
    for window in args.window:
        blocks = [range(start, start + window) for start in range(0, len(dwelt_clean) - window + 1, window)]
        rows.append(
            level_shares(f"holds each {args.hold} frames", window, [judged(drift, dwelt_clean, b) for b in blocks])
        )
    print("False alarms on a long in-distribution run\n" + table(rows) + "\n")

    truth = np.array(scan(unseen, summary.labels).labels)
    rows = [
        (
            "camera",
            "change",
            "accuracy",
            "window",
            "at drift",
            "windows to drift: median",
            "max",
            "at watch",
            "windows to watch: median",
        )
    ]
    for camera, streams_of, stream in (
        ("sees each scan once", scores, drawn),
        (f"holds each {args.hold} frames", held_scores, dwelt(args.hold)),
    ):
        clean_of = streams_of["none (unseen scans)"]
        for name in list(CHANGES) + ["digits 4-9 (unknown classes)"]:
            accuracy = f"{np.mean(scores[name].argmax(axis=1) == truth):.4f}" if name in CHANGES else "-"
            for window in args.window:
                found = [
                    windows_to_detect(
                        drift, stream(clean_of, streams_of[name], window, np.random.default_rng(seed), 20), window
                    )
                    for seed in range(args.seeds)
                ]
                cells = []
                for level in ("drift", "watch"):
                    hits = [f[level] for f in found if f[level] is not None]
                    cells.append(
                        [
                            f"{len(hits)}/{len(found)}",
                            f"{statistics.median(hits):g}" if hits else "-",
                            f"{max(hits)}" if hits else "-",
                        ]
                    )
                rows.append((camera, name, accuracy, f"{window}", *cells[0], *cells[1][:2]))
    print(
        "Windows to detect each change (within 20; 1: the window the change starts in, half of it changed)\n"
        + table(rows)
        + "\n"
    )

    bare = work / "no-fingerprint"
    shutil.copytree(work / "bundle", bare)
    manifest = json.loads((bare / "edge.json").read_text())
    del manifest["fingerprint"]
    (bare / "edge.json").write_text(json.dumps(manifest))
    video = work / "scans.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter.fourcc(*"FFV1"), 30.0, (48, 48))
    for i in range(args.frames):
        writer.write(cv2.cvtColor(clean_images[i % len(clean_images)], cv2.COLOR_RGB2BGR))
    writer.release()
    fps = {"without a fingerprint": [], "with the fingerprint": []}
    for _ in range(args.rounds):
        fps["without a fingerprint"].append(edge_run_fps(bare, video))
        fps["with the fingerprint"].append(edge_run_fps(work / "bundle", video))
    counts, n = drift.counts(), 20000
    start = time.perf_counter()
    for i in range(n):
        counts.add(clean[i % len(clean)])
    counts.totals()
    per_frame_us = (time.perf_counter() - start) / n * 1e6
    base = statistics.median(fps["without a fingerprint"])
    rows = [("edge run", "fps (median)", "rounds", "ratio")]
    rows += [
        (name, f"{statistics.median(v):.1f}", " ".join(f"{x:.0f}" for x in v), f"{statistics.median(v) / base:.3f}")
        for name, v in fps.items()
    ]
    print(
        f"Cost: edge run --threads 1 on {args.frames} frames (48x48 FFV1), {args.rounds} rounds alternating, "
        f"on {cpu_name()}\n" + table(rows)
    )
    print(
        f"drift's work a frame (buffered, binned 64 at a time), alone: {per_frame_us:.1f} us: at "
        f"{base:.0f} fps a ratio of {1 / (1 + per_frame_us * 1e-6 * base):.3f}"
    )
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
