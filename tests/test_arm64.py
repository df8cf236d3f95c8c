"""The device side on aarch64 (a Raspberry Pi's architecture) under qemu user-mode emulation:
`devices/arm64/check.sh` builds a Debian arm64 root and the aarch64 wheels of the device install, then
`edge eval` and `edge run` there must predict what they predict on this x86 host: the same class for
every frame, the same confusion matrix, and every score within one step of the int8 output. (Measured:
1 of 680 frames had one score one step apart, 0.0273 vs 0.0234 for its second class: XNNPACK's int8
kernels round differently on arm64 and x86.)
The same holds for camera-sized MJPG through the fast frame path (JPEG decoded at 1/8 size, resized in
steps), where libjpeg-turbo's NEON and x86 code do the decoding.
Slow (about a minute, and it downloads ~60 MB of .debs and ~100 MB of wheels): python3 -m pytest -m slow."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from edge.folders import scan
from tests.cli import edge_cli

CHECK = Path(__file__).resolve().parents[1] / "devices" / "arm64" / "check.sh"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (shutil.which("debootstrap") and shutil.which("qemu-aarch64-static")),
        reason="needs debootstrap and qemu-user-static (sudo apt install debootstrap qemu-user-static)",
    ),
    pytest.mark.skipif(os.geteuid() != 0, reason="debootstrap runs as root only"),
]


def on_arm64(work, *args):
    r = subprocess.run(
        [CHECK, work, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=1800,
        env={**os.environ, "PYTHON": sys.executable},
        check=False,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return r


@pytest.fixture(scope="module")
def video(digits, tmp_path_factory):
    """Every scan of the digit set, as one FFV1 video."""
    path = tmp_path_factory.mktemp("arm64-video") / "all.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"FFV1"), 30.0, (48, 48))
    for file in scan(digits).paths:
        writer.write(cv2.imread(str(file)))
    writer.release()
    return path


@pytest.fixture(scope="module")
def camera_video(digits, tmp_path_factory):
    """Every scan of the digit set enlarged to 640x480, as one MJPG video: what a USB camera sends."""
    path = tmp_path_factory.mktemp("arm64-camera") / "all.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 30.0, (640, 480))
    for file in scan(digits).paths:
        writer.write(cv2.resize(cv2.imread(str(file)), (640, 480), interpolation=cv2.INTER_CUBIC))
    writer.release()
    return path


def test_arm64_predicts_exactly_what_x86_predicts(e2e, digits, video, camera_video, tmp_path):
    work = tmp_path / "arm64"
    arm_eval = json.loads(on_arm64(work, "eval", e2e.bundle, "--data", digits, "--json", "-").stdout)
    x86_eval = json.loads(edge_cli("eval", e2e.bundle, "--data", digits, "--json", "-").stdout)
    assert arm_eval["runtime"].startswith("ai_edge_litert") and x86_eval["runtime"] == arm_eval["runtime"]
    assert arm_eval["confusion_matrix"] == x86_eval["confusion_matrix"]

    for source, name in ((video, "lossless"), (camera_video, "camera")):
        on_arm64(work, "run", e2e.bundle, "--source", source, "--log", tmp_path / f"arm-{name}.jsonl", "--json", "-")
        r = edge_cli("run", e2e.bundle, "--source", source, "--log", tmp_path / f"x86-{name}.jsonl")
        assert r.returncode == 0, r.stderr
        same_calls(e2e, tmp_path, name, len(scan(digits).paths))


def same_calls(e2e, tmp_path, name, n):
    """The frame logs of arm64 and x86 runs name the same classes, with scores a step apart at most."""

    def frames(arch):
        return [json.loads(line) for line in (tmp_path / f"{arch}-{name}.jsonl").read_text().splitlines()]

    arm, x86 = frames("arm"), frames("x86")
    assert len(arm) == len(x86) == n
    assert [f["label"] for f in arm] == [f["label"] for f in x86]
    step = e2e.output["quantization"][0]
    apart = [(a["frame"], a["top_k"], b["top_k"]) for a, b in zip(arm, x86, strict=True) if a["top_k"] != b["top_k"]]
    for frame, a, b in apart:
        scores_a, scores_b = dict(a), dict(b)
        assert all(abs(scores_a[c] - scores_b[c]) <= step + 1e-9 for c in scores_a.keys() & scores_b.keys()), frame
    assert len(apart) <= len(arm) // 100, apart  # a rounding difference now and then, not a different model
