"""Does reporting slow the frame loop? `edge run` frames per second with no reporting, against the same
run reporting every 0.2 s to a live `edge serve`, and to a host that accepts connections and never
answers (the worst case: every send hangs until its timeout).

    python benchmarks/report_overhead_bench.py            # MobileNetV2 int8 @ 224, MJPG, 500 frames

Baseline: the same `edge run` without --report-to, in the same run, alternating, median of 3 rounds.
Target: ratio >= 0.98 (sending happens on its own thread; the loop only queues a report).
"""

import argparse
import json
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.run_bench import build, write_video  # noqa: E402
from edge.server.store import create_token, open_db  # noqa: E402
from tests.server import Server  # noqa: E402


def edge_run(model, video, labels, threads, report=()) -> dict:
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge.cli",
            "run",
            str(model),
            "--labels",
            str(labels),
            "--source",
            str(video),
            "--threads",
            str(threads),
            "--json",
            "-",
            *report,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(r.stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=500)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from sklearn.datasets import load_digits

    work = Path(tempfile.mkdtemp())
    labels = work / "labels.txt"
    labels.write_text("0\n1\n2\n3\n")
    scans = (load_digits().images[:100] * (255 / 16)).astype(np.uint8)
    images = np.stack([np.dstack([cv2.resize(s, (224, 224), interpolation=cv2.INTER_CUBIC)] * 3) for s in scans])
    model = build("mobilenetv2", 224, images, work)
    video = write_video(work / "v.avi", "MJPG", (224, 224), (images[i % len(images)] for i in range(args.frames)))
    db = open_db(work / "edge.db")
    token = create_token(db, "bench-pi")
    db.close()
    server = Server(work / "edge.db").start()
    hung = socket.socket()  # listens, never accepts: connects succeed, sends hang until the timeout
    hung.bind(("127.0.0.1", 0))
    hung.listen(64)
    hosts = {"live edge serve": server.url, "host that never answers": f"http://127.0.0.1:{hung.getsockname()[1]}"}
    fps = {"no reporting": [], **{name: [] for name in hosts}}
    sent = {name: [] for name in hosts}
    try:
        for round_ in range(args.rounds):
            fps["no reporting"].append(edge_run(model, video, labels, args.threads)["fps"])
            for name, url in hosts.items():
                summary = edge_run(
                    model,
                    video,
                    labels,
                    args.threads,
                    [
                        "--report-to",
                        url,
                        "--token",
                        token,
                        "--device-id",
                        "bench-pi",
                        "--report-every",
                        "0.2",
                        "--outbox",
                        str(work / f"outbox-{round_}-{len(sent[name])}-{name[:4]}.db"),
                    ],
                )
                fps[name].append(summary["fps"])
                sent[name].append(f"{summary['reporting']['sent']}/{summary['reporting']['reports']}")
    finally:
        server.stop()
        hung.close()
    base = float(np.median(fps["no reporting"]))
    print(f"\nMobileNetV2 int8 @ 224, {args.frames} MJPG frames, {args.threads} threads, median of {args.rounds}")
    print(f"{'edge run':<28}{'fps':>9}{'ratio':>8}{'target':>8}  reports sent")
    for name, values in fps.items():
        ratio = float(np.median(values)) / base
        target = "" if name == "no reporting" else ("PASS" if ratio >= 0.98 else "FAIL")
        print(f"{name:<28}{np.median(values):>9.1f}{ratio:>8.3f}{target:>8}  {' '.join(sent.get(name, []))}")


if __name__ == "__main__":
    main()
