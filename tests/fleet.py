"""A fleet on loopback, for the rollout's test and benchmark: `edge run` on a video of the scans as a device's
service runs it (started again when it ends, as Restart=always does), following the host's model versions."""

import json
import signal
import subprocess
import threading
import time
from pathlib import Path

import cv2

from tests.videos import read_bgr

FPS = 30.0


def video(digits: Path, out: Path, seconds: float) -> tuple[Path, Path]:
    """Each class's scans in turn, a scan a frame, for `seconds` at FPS; and the truth schedule."""
    classes = sorted(p.name for p in digits.iterdir())
    scans = {c: [read_bgr(p) for p in sorted((digits / c).iterdir())] for c in classes}
    writer = cv2.VideoWriter(str(out / "camera.avi"), cv2.VideoWriter.fourcc(*"FFV1"), FPS, (48, 48))
    schedule, run = [], int(FPS * 2)  # a class for 2 s at a time
    for start in range(0, int(seconds * FPS), run):
        label = classes[(start // run) % len(classes)]
        for i in range(run):
            writer.write(scans[label][(start + i) % len(scans[label])])
        schedule.append({"start_frame": start, "end_frame": start + run - 1, "label": label})
    writer.release()
    (out / "truth.json").write_text(json.dumps(schedule))
    return out / "camera.avi", out / "truth.json"


def device_args(tmp: Path, name: str, server, secret: str, public: Path, every: float) -> list[str]:
    return [
        "--report-to",
        server.url,
        "--token",
        secret,
        "--device-id",
        name,
        "--report-every",
        str(every),
        "--outbox",
        str(tmp / f"{name}-outbox.db"),
        "--follow-models",
        "--trust",
        str(public),
        "--models-dir",
        str(tmp / f"{name}-models"),
    ]


class Service(threading.Thread):
    """A device's `edge run`, started again `restart` seconds after each end until `stop`: its runs' summaries
    and frame logs are NAME-K.json and NAME-K.jsonl."""

    def __init__(self, name: str, command: list, tmp: Path, restart: float):
        super().__init__(daemon=True)
        self.name, self.command, self.tmp, self.restart = name, command, tmp, restart
        self.runs, self.stopped = 0, threading.Event()
        self.process: subprocess.Popen | None = None

    def run(self) -> None:
        while not self.stopped.is_set():
            files = [
                "--json",
                str(self.tmp / f"{self.name}-{self.runs}.json"),
                "--log",
                str(self.tmp / f"{self.name}-{self.runs}.jsonl"),
            ]
            self.process = process = subprocess.Popen(
                self.command + files, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            process.wait()
            self.runs += 1
            self.stopped.wait(self.restart)

    def stop(self) -> list[tuple[dict, Path]]:
        """End the run under way as systemd stops a unit (SIGTERM: the summary is written); (summary, log) of
        every run."""
        self.stopped.set()
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        self.join()
        return [
            (json.loads((self.tmp / f"{self.name}-{k}.json").read_text()), self.tmp / f"{self.name}-{k}.jsonl")
            for k in range(self.runs)
            if (self.tmp / f"{self.name}-{k}.json").exists()
        ]


def wait(server, publisher: str, model: str, most: float) -> dict:
    """The model's newest rollout once it has ended (done, failed or aborted)."""
    deadline = time.time() + most
    while time.time() < deadline:
        found = server.get(f"/api/v1/rollouts?model={model}", publisher)[1]["rollouts"]
        if found and found[0]["state"] in ("failed", "aborted", "done"):
            return found[0]
        time.sleep(0.2)
    raise TimeoutError(f"the rollout of {model} did not end in {most:.0f} s: {found[:1]}")
