"""`edge run`: classify frames from a camera (or a file, stream, folder) on the device, and evaluate
live against ground truth in the field. numpy, OpenCV and the TFLite interpreter only.

The reader thread captures and prepares frame n+1 (colour, resize, quantize) while the model runs on
frame n. Field metrics stream through the same accumulator as `edge eval`, so the summary has the same
metric keys as `edge eval --json`.
"""
import json
import re
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.capture import FrameReader, parse_source
from edge.errors import EdgeError
from edge.files import check_writable
from edge.interpreter import (
    input_detail,
    input_size,
    invoker,
    make_interpreter,
    output_detail,
    resolve_threads,
    runtime,
)
from edge.preprocess import output_to_scores, pixels_to_input, resize
from edge.progress import Log
from edge.truth import read_schedule, whole_session
from eval.accumulator import Accumulator
from eval.evaluate import WARMUP, default_top_k, model_labels, open_model
from eval.latency import latency_stats
from eval.metrics import accuracy

UNKNOWN = "unknown"


@dataclass
class RunOptions:
    labels: Path | None = None  # bare .tflite files
    input_range: tuple[float, float] | None = None
    threads: int | None = None
    top_k: int = 3
    threshold: float | None = None  # below it the frame is "unknown"
    smooth: int = 1  # average the scores of the last N frames
    max_frames: int | None = None
    duration: float | None = None  # seconds
    realtime: bool = False  # pace a video file like a camera (newest frame only)
    truth: str | None = None  # the label of everything seen in this session
    truth_schedule: Path | None = None
    log_file: Path | None = None  # one JSON record a frame

    def check(self) -> None:
        problems = [
            (self.top_k < 1, f"--top-k {self.top_k} must be at least 1"),
            (self.threshold is not None and not 0 <= self.threshold <= 1, "--threshold must be between 0 and 1"),
            (self.smooth < 1, f"--smooth {self.smooth} must be at least 1 (1: no smoothing)"),
            (self.max_frames is not None and self.max_frames < 1, "--max-frames must be at least 1"),
            (self.duration is not None and self.duration <= 0, "--duration must be positive (seconds)"),
            (self.truth is not None and self.truth_schedule is not None, "give --truth or --truth-schedule, not both"),
        ]
        for bad, message in problems:
            if bad:
                raise EdgeError(message)


def run(model, source, options: RunOptions | None = None, log: Log | None = None) -> dict:
    """Run `model` (bundle or .tflite) on `source` until it ends, --max-frames, --duration or Ctrl-C;
    returns the summary."""
    opts = options or RunOptions()
    opts.check()
    log = log or Log(enabled=False)
    target = open_model(model, opts.labels, opts.input_range)
    threads = resolve_threads(opts.threads)
    interpreter = make_interpreter(target.path, threads)
    labels = model_labels(target, interpreter)
    truth = (whole_session(opts.truth, labels) if opts.truth else
             read_schedule(opts.truth_schedule, labels) if opts.truth_schedule else None)
    log_file = check_writable(opts.log_file, "--log") if opts.log_file else None
    top_k = min(opts.top_k, len(labels))
    height, width = input_size(interpreter)
    inp, out = input_detail(interpreter), output_detail(interpreter)

    def prepare(rgb):  # on the reader thread
        return pixels_to_input(resize(rgb, height, width)[None], inp["dtype"], inp["quantization"], target.input_range)

    call = invoker(interpreter)
    acc = Accumulator(labels, sorted({*default_top_k(len(labels)), top_k}))
    recent = deque(maxlen=opts.smooth)
    inference_ms, frame_ms, done = [], [], []
    live = _LiveLine(log)
    started = time.perf_counter()
    reader = FrameReader(parse_source(source), prepare=prepare, realtime=opts.realtime, log=log)
    records = open(log_file, "w", encoding="utf-8") if log_file else None  # noqa: SIM115 -- closed below
    try:
        for frame in reader:
            start = time.perf_counter()
            raw = call(frame.prepared)
            inference_ms.append((time.perf_counter() - start) * 1000)
            recent.append(output_to_scores(raw, out["quantization"]).reshape(-1))
            scores = recent[0] if opts.smooth == 1 else np.mean(recent, axis=0)
            top = np.argsort(-scores, kind="stable")[:top_k]
            label = labels[top[0]] if opts.threshold is None or scores[top[0]] >= opts.threshold else UNKNOWN
            true = truth.at(frame.index, frame.seconds) if truth else None
            if true is not None:
                acc.add(true, scores)
            done.append(time.perf_counter())
            frame_ms.append((done[-1] - frame.captured) * 1000)
            if records:
                records.write(json.dumps({
                    "frame": frame.index, "t": round(frame.seconds, 4), **({"file": frame.name} if frame.name else {}),
                    "label": label, "score": float(scores[top[0]]),
                    "top_k": [[labels[c], float(scores[c])] for c in top],
                    "truth": labels[true] if true is not None else None,
                    "latency_ms": round(inference_ms[-1], 3), "frame_ms": round(frame_ms[-1], 3)}) + "\n")
            live.show(label, float(scores[top[0]]), len(inference_ms), started, inference_ms[-1], acc)
            if opts.max_frames and len(inference_ms) >= opts.max_frames:
                break
            if opts.duration and time.perf_counter() - started >= opts.duration:
                break
    except KeyboardInterrupt:
        log("interrupted: writing the summary")
    finally:
        reader.close()
        live.end()
        if records:
            records.close()
    seconds = time.perf_counter() - started
    if not inference_ms:
        raise EdgeError(f"{source} gave no frames: check the source")
    report = acc.report()
    if truth is None:
        report["notes"].append("no --truth or --truth-schedule: predictions only, nothing evaluated")
    inference = latency_stats(inference_ms, WARMUP)
    inference.pop("fps")
    frame = latency_stats(frame_ms, WARMUP)
    frame.pop("fps")
    stats = reader.stats
    return {
        "model": str(target.path), "model_bytes": target.path.stat().st_size, "source": str(source), **report,
        "frames": len(inference_ms), "evaluated": acc.n, "dropped": stats.dropped, "failures": stats.failures, "reopens": stats.reopens,
        "skipped": {"count": len(stats.skipped), "files": [{"path": p, "why": w} for p, w in stats.skipped]},
        # The pace a long session keeps: start-up (opening the source, the first invoke) is not in it.
        "fps": (len(done) - 1) / (done[-1] - done[0]) if len(done) > 1 and done[-1] > done[0] else None,
        "seconds": seconds, "peak_rss_mb": peak_rss_mb(),
        "latency_ms": {"inference": inference, "frame": frame},
        "runtime": runtime(interpreter), "threads": threads,
        "options": {"top_k": top_k, "threshold": opts.threshold, "smooth": opts.smooth, "realtime": opts.realtime},
    }


def peak_rss_mb() -> float:
    """This process's peak resident memory (what the device has to have free). On Linux from VmHWM:
    getrusage's maxrss survives exec, so a runner started by a big process would report the parent's."""
    try:
        status = Path("/proc/self/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024
    except (OSError, AttributeError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB elsewhere


class _LiveLine:
    """The running line on a terminal (top class, score, FPS, latency, field accuracy), redrawn a few
    times a second; nothing when stderr is not a terminal."""

    def __init__(self, log: Log):
        self.enabled = bool(log) and sys.stderr.isatty()
        self.last = 0.0

    def show(self, label, score, frames, started, latency, acc) -> None:
        now = time.perf_counter()
        if not self.enabled or now - self.last < 0.2:
            return
        self.last = now
        field = f"  field acc {accuracy(acc.cm):.3f} on {acc.n}" if acc.n else ""
        sys.stderr.write(f"\r{label[:24]:<24} {score:.3f}  {frames / (now - started):6.1f} fps  "
                         f"{latency:7.2f} ms{field}   ")
        sys.stderr.flush()

    def end(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
