"""What checking a collected frame's JPEG costs the host, before and after issue 29's bounds, in the same run.

    python benchmarks/frame_check_bench.py              # about 25 s on 2 cores
    python benchmarks/frame_check_bench.py --rounds 9

Before: the old check, the record's base64 decoded and the whole JPEG decoded at 1/8 in grey (cv2.imdecode),
in as many threads at once as POSTs arrive. After: edge.server.frame_check.refusal (its segments read first,
limits, then that decode, one at a time a process). Each case runs in a fresh process, which reports its wall
time and how far its peak resident memory (VmHWM, which sees OpenCV's allocations, as tracemalloc does not)
rose over what the process held before the check. The JPEGs: scikit-learn's photograph china.jpg resized to a
640x480 and a 1920x1080 camera frame (baseline, as devices send), to 4096x4096 progressive (the largest the host
takes), and the issue's hostile frames: 8192x8192 progressive (one, and 8 POSTs at once), and a 2048x2048 progressive
JPEG of a smooth picture (tests/jpegs.py: the digit scans enlarged) whose shortest scan, 51 bytes, is repeated
to 758 KB; and, for the segment reader's own cost, a 640x480 frame with 7 MB of fill bytes before its scan.
"""

import argparse
import base64
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.version import cpu_name  # noqa: E402
from tests.jpegs import encoded, repeated_scan  # noqa: E402


def photo(width: int, height: int) -> np.ndarray:
    from sklearn.datasets import load_sample_image

    return cv2.resize(
        cv2.cvtColor(load_sample_image("china.jpg"), cv2.COLOR_RGB2BGR), (width, height), interpolation=cv2.INTER_CUBIC
    )


def jpeg(width: int, height: int, progressive: bool = False) -> bytes:
    return cv2.imencode(
        ".jpg", photo(width, height), [cv2.IMWRITE_JPEG_PROGRESSIVE, int(progressive), cv2.IMWRITE_JPEG_QUALITY, 90]
    )[1].tobytes()


def filled(data: bytes, size: int) -> bytes:
    """A JPEG with fill bytes (FF, which a marker may follow any number of) before its scan, to `size` bytes:
    the after check must not walk them one by one."""
    at = data.index(b"\xff\xda")
    return data[:at] + b"\xff" * (size - len(data)) + data[at:]


def cases() -> dict[str, tuple[bytes, int, int]]:
    """name: (JPEG, POSTs at once, whether it runs --rounds times: the costly ones run once)."""
    smooth = encoded(2048, 2048, progressive=True)
    scan = len(repeated_scan(smooth, 1)) - len(smooth)
    huge = jpeg(8192, 8192, True)
    return {
        "640x480 camera": (jpeg(640, 480), 1, 1),
        "1920x1080 camera": (jpeg(1920, 1080), 1, 1),
        "4096x4096 progressive": (jpeg(4096, 4096, True), 1, 1),
        "4096x4096 progressive x8": (jpeg(4096, 4096, True), 8, 0),
        "8192x8192 progressive": (huge, 1, 0),
        "8192x8192 progressive x8": (huge, 8, 0),
        "scan repeated, 758 KB": (repeated_scan(smooth, (758_000 - len(smooth)) // scan), 1, 0),
        "7 MB of fill bytes": (filled(jpeg(640, 480), 7_000_000), 1, 0),
    }


def old_refusal(frames: list[dict]) -> tuple[int, str] | None:
    """The check before issue 29: every frame decoded whole at 1/8, in grey, by as many threads as ask."""
    for n, frame in enumerate(frames):
        data = np.frombuffer(base64.b64decode(frame["jpeg"]), np.uint8)
        if cv2.imdecode(data, cv2.IMREAD_REDUCED_GRAYSCALE_8) is None:
            return 422, f"frame {n}: 'jpeg' does not decode as a JPEG image"
    return None


def peak_mb() -> float:
    """This process's peak resident memory (VmHWM). Not ru_maxrss: after exec it starts from the forking
    parent's, and this benchmark's parent holds the 8192x8192 pictures."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return int(fields["VmHWM"].split()[0]) / 1024


def child(which: str, path: str, posts: int) -> None:
    """One case in this process: `posts` threads check the frame at once; prints wall s and peak rise."""
    from edge.server.frame_check import refusal

    check = refusal if which == "after" else old_refusal
    frames = [{"jpeg": base64.b64encode(Path(path).read_bytes()).decode("ascii")}]
    card = cv2.imencode(".jpg", np.full((48, 64, 3), 128, np.uint8))[1]  # a grey card: no import of sklearn here
    check([{"jpeg": base64.b64encode(card.tobytes()).decode("ascii")}])  # libraries loaded before the baseline
    held = peak_mb()
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(check(frames))) for _ in range(posts)]
    wall = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - wall
    rise = peak_mb() - held
    print(json.dumps({"wall": wall, "peak_mb": rise, "answer": answers[0]}))


def measure(which: str, path: Path, posts: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", which, str(path), str(posts)], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds of the cheap cases (median taken)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child[0], args.child[1], int(args.child[2]))
    print(f"CPU: {cpu_name()}; OpenCV {cv2.__version__}")
    print(
        f"{'case':26} {'KB':>6} {'before ms':>10} {'after ms':>9} {'ratio':>6} {'before MB':>10} {'after MB':>9}"
        f" {'ratio':>6}  after's answer"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for name, (data, posts, repeat) in cases().items():
            path = Path(tmp) / "frame.jpg"
            path.write_bytes(data)
            rounds = args.rounds if repeat else 1
            runs = {which: [measure(which, path, posts) for _ in range(rounds)] for which in ("before", "after")}
            ms = {which: statistics.median(r["wall"] for r in got) * 1000 for which, got in runs.items()}
            mb = {which: statistics.median(r["peak_mb"] for r in got) for which, got in runs.items()}
            answer = runs["after"][0]["answer"]
            said = "taken" if answer is None else f"{answer[0]}: {answer[1][9:60]}"
            print(
                f"{name:26} {len(data) / 1000:6.0f} {ms['before']:10.1f} {ms['after']:9.1f} "
                f"{ms['after'] / ms['before']:6.2f} {mb['before']:10.1f} {mb['after']:9.1f} "
                f"{(mb['after'] + 1) / (mb['before'] + 1):6.2f}  {said}"
            )
    print(
        "ms: wall time of the check (all POSTs, at once); MB: peak resident memory's rise over what the process "
        "held before; ratios after/before (memory's with 1 MB added to each, as a rise may be 0)"
    )


if __name__ == "__main__":
    main()
