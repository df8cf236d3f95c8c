"""What a run saw over stretches of frames: the whole run's tally, and the report windows `edge run
--report-to` closes into reports, each a tally of its own."""

import re
import sys
import time
from pathlib import Path

import numpy as np

from edge.capture import CaptureStats
from edge.drift import Drift
from edge.eval.accumulator import Accumulator
from edge.eval.evaluate import WARMUP
from edge.eval.latency import latency_stats
from edge.health import Health
from edge.report import make_report
from edge.reporter import Reporter, ReportOptions


class Tally:
    """What a run saw over a stretch of frames: field metrics, timings, and what capture lost meanwhile."""

    def __init__(self, labels, top_ks, stats: CaptureStats, warmup: int, drift: Drift | None = None):
        self.acc = Accumulator(labels, top_ks)
        self.drift, self.counts = drift, drift.counts() if drift else None
        self.warmup = warmup
        self.started, self.wall_start = time.perf_counter(), time.time()
        self.at_start = (stats.dropped, stats.failures, stats.reopens, len(stats.skipped))
        self.inference_ms: list[float] = []
        self.frame_ms: list[float] = []
        self.done: list[float] = []
        self.top1_sum = 0.0  # of the frames' top scores: a model fed what it was not made for is unsure of all

    @property
    def frames(self) -> int:
        return len(self.done)

    def restart(self) -> None:
        """Time the stretch from now on, keeping the capture counts from the start: what was lost while no
        frame came goes into the next summary made."""
        self.started, self.wall_start = time.perf_counter(), time.time()

    def add(self, true, scores, inference_ms: float, frame_ms: float, done: float, own=None) -> None:
        """`own`: the frame's own scores, for drift (`scores` may be smoothed over frames); a tally made without
        a fingerprint ignores them (a run that began on a model without one, and swapped in one with it)."""
        if true is not None:
            self.acc.add(true, scores)
        if own is not None and self.counts is not None:
            self.counts.add(own)
        self.top1_sum += float(np.max(scores))
        self.inference_ms.append(inference_ms)
        self.frame_ms.append(frame_ms)
        self.done.append(done)

    def summary(self, stats: CaptureStats, about: dict, end: float | None = None) -> dict:
        """The `edge run --json` keys for these frames (the metric keys of `edge eval --json` among them),
        with `about`: the model and the run's settings. `end`: when the stretch ended [now]."""
        dropped, failures, reopens, skipped = self.at_start
        inference, frame = (latency_stats(times, self.warmup) for times in (self.inference_ms, self.frame_ms))
        inference.pop("fps")
        frame.pop("fps")
        done = self.done
        return {
            **self.acc.report(),
            "frames": self.frames,
            "evaluated": self.acc.n,
            "dropped": stats.dropped - dropped,
            "failures": stats.failures - failures,
            "reopens": stats.reopens - reopens,
            "skipped": {
                "count": len(stats.skipped) - skipped,
                "files": [{"path": p, "why": w} for p, w in stats.skipped[skipped:]],
            },
            # The pace a long session keeps: start-up (opening the source, the first invoke) is not in it.
            "fps": (len(done) - 1) / (done[-1] - done[0]) if len(done) > 1 and done[-1] > done[0] else None,
            "seconds": (time.perf_counter() if end is None else end) - self.started,
            "latency_ms": {"inference": inference, "frame": frame},
            "top1_mean": self.top1_sum / self.frames if self.frames else None,
            "peak_rss_mb": peak_rss_mb(),
            **about,
            **({"drift": self.drift.judge(self.counts)} if self.drift and self.counts is not None else {}),
        }


class Windows:
    """Reporting: a Tally a window of `every` seconds, each closed into a report for the Reporter. A window
    without frames (the source down) is counted, not sent: a report of nothing would only look like one."""

    def __init__(
        self,
        reporter: Reporter,
        options: ReportOptions,
        about: dict,
        labels,
        top_ks,
        stats,
        run_id: str,
        model_sha256: str,
        drift: Drift | None = None,
        also=None,
        health: Health | None = None,
    ):
        """`also`: called with each report as it goes to the reporter (edge.calls: its window's metrics);
        `health`: read into each report."""
        assert options.device_id, "ReportOptions checked it"
        self.also, self.health = also, health
        self.reporter, self.options, self.about, self.device_id = reporter, options, about, options.device_id
        self.labels, self.top_ks, self.drift = labels, top_ks, drift
        self.levels: dict[str, int] = {}  # windows sent, by drift level
        self.run_id, self.model_sha256, self.seq, self.empty = run_id, model_sha256, 0, 0
        self.current = Tally(labels, top_ks, stats, WARMUP, drift)

    def add(self, true, scores, inference_ms, frame_ms, done, stats, own=None) -> None:
        self.current.add(true, scores, inference_ms, frame_ms, done, own)
        self.tick(stats)

    def tick(self, stats) -> None:
        if time.time() - self.current.wall_start < self.options.every:
            return
        if self.current.frames:
            self._send(stats)
        else:
            self.empty += 1
            self.current.restart()

    def _send(self, stats) -> None:
        window = self.current
        summary = window.summary(stats, self.about)
        if self.health:
            summary["health"] = self.health.read(stats.read)
        if self.drift:
            level = summary["drift"]["level"]
            self.levels[level] = self.levels.get(level, 0) + 1
        report = make_report(
            summary, self.device_id, self.run_id, self.seq, self.model_sha256, window.wall_start, time.time()
        )
        self.reporter.submit(report)
        if self.also:
            self.also(report)
        self.seq += 1
        self.current = Tally(self.labels, self.top_ks, stats, 0, self.drift)

    def switch(self, stats, model_sha256: str, drift: Drift | None, about: dict) -> None:
        """Another model runs from now on (edge.follow): the window so far goes out as a report of the one
        before, and the next is the new one's, judged against its own fingerprint."""
        if self.current.frames:
            self._send(stats)
        self.model_sha256, self.drift, self.about = model_sha256, drift, about
        self.current = Tally(self.labels, self.top_ks, stats, 0, drift)

    def close(self, stats) -> dict:
        """Send the last (partial) window if it has frames, then stop the reporter; its tally for the run
        summary."""
        if self.current.frames:
            self._send(stats)
        return {"run_id": self.run_id, "reports": self.seq, "empty_windows": self.empty, **self.reporter.close()}


def peak_rss_mb() -> float:
    """This process's peak resident memory (what the device has to have free). On Linux from VmHWM:
    getrusage's maxrss survives exec, so a runner started by a big process would report the parent's."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        status = ""
    found = re.search(r"VmHWM:\s+(\d+) kB", status)
    if found:
        return int(found.group(1)) / 1024
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB elsewhere
