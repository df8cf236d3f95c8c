"""`edge run`, the loop: classify frames from a camera (or a file, stream, folder) on the device, and evaluate
live against ground truth in the field. numpy, OpenCV and the TFLite interpreter only.

The reader thread captures and prepares frame n+1 (colour, resize, quantize) while the model runs on
frame n. Field metrics stream through the same accumulator as `edge eval`, so the summary has the same
metric keys as `edge eval --json`.
"""
import hashlib
import json
import re
import sys
import time
import uuid
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.capture import CaptureStats, FrameReader, parse_camera_mode, parse_source, redact
from edge.collect import CollectOptions, Collector
from edge.drift import HOW, MIN_FRAMES, THRESHOLDS, Drift, check_min_frames, parse_thresholds
from edge.drift import find as find_fingerprint
from edge.errors import EdgeError, choose, finite, whole
from edge.eval.accumulator import Accumulator
from edge.eval.evaluate import WARMUP, default_top_k
from edge.eval.latency import latency_stats
from edge.eval.metrics import accuracy
from edge.files import check_writable
from edge.interpreter import input_detail, input_size, invoker, output_detail
from edge.model import load_model
from edge.preprocess import DECODES, output_to_scores, pixels_to_input, resize, shrink
from edge.preview import Preview, key_action, overlay
from edge.progress import Log
from edge.report import make_report
from edge.reporter import Reporter, ReportOptions
from edge.signals import stop_signals
from edge.truth import KeyedTruth, read_schedule, whole_session

UNKNOWN = "unknown"
DEFAULT_TOP_K = 3
TICK = 0.25  # seconds the loop waits for a frame before it looks at the clock and for a stop signal anyway
MAX_SMOOTH = 1000  # frames averaged: each frame averages them all, and a longer window no longer follows the scene


@dataclass
class RunOptions:
    labels: Path | None = None  # bare .tflite files
    input_range: tuple[float, float] | None = None
    threads: int | None = None
    delegate: str | None = None  # "edgetpu"; automatic for *_edgetpu.tflite
    top_k: int = DEFAULT_TOP_K
    threshold: float | None = None  # below it the frame is "unknown"
    smooth: int = 1  # average the scores of the last N frames
    max_frames: int | None = None
    duration: float | None = None  # seconds
    realtime: bool = False  # pace a video file like a camera (newest frame only)
    truth: str | None = None  # the label of everything seen in this session
    truth_schedule: Path | None = None
    log_file: Path | None = None  # one JSON record a frame
    preview: bool = False  # show the frames in a window; number keys set the truth
    camera_mode: str | None = None  # "1280x720@30/MJPG": what to ask a camera for
    decode: str = "fast"  # edge.preprocess.DECODES
    drift_thresholds: tuple[float, float] | str = THRESHOLDS  # PSI against the fingerprint: watch, drift
    drift_min_frames: int = MIN_FRAMES  # fewer frames in a window: too few to judge

    def check(self) -> None:
        choose("--decode", self.decode, DECODES)
        parse_thresholds(self.drift_thresholds)
        check_min_frames(self.drift_min_frames)
        problems = [
            (not whole(self.top_k, 1), f"--top-k {self.top_k} must be a whole number, at least 1"),
            (self.threshold is not None and not (finite(self.threshold) and 0 <= self.threshold <= 1),
             f"--threshold {self.threshold} must be a number from 0 to 1"),
            (not whole(self.smooth, 1, MAX_SMOOTH),
             f"--smooth {self.smooth} must be at least 1 (1: no smoothing) and at most {MAX_SMOOTH} frames"),
            (self.max_frames is not None and not whole(self.max_frames, 1),
             f"--max-frames {self.max_frames} must be a whole number, at least 1"),
            (self.duration is not None and not (finite(self.duration) and self.duration > 0),
             f"--duration {self.duration}: give a positive number of seconds, e.g. 60"),
            (self.truth is not None and not str(self.truth).strip(),
             "--truth is empty: give one of the model's labels, or leave --truth out"),
            (self.truth is not None and self.truth_schedule is not None, "give --truth or --truth-schedule, not both"),
        ]
        for bad, message in problems:
            if bad:
                raise EdgeError(message)


def run(model, source, options: RunOptions | None = None, log: Log | None = None,
        report_options: ReportOptions | None = None, collect_options: CollectOptions | None = None) -> dict:
    """Run `model` (bundle or .tflite) on `source` until it ends, --max-frames, --duration, or SIGINT (Ctrl-C),
    SIGTERM or SIGHUP (edge.signals); returns the summary. With `report_options`, a report a window with
    frames goes to the host (`edge serve`); with `collect_options` as well, the frames its rule chooses."""
    opts = options or RunOptions()
    opts.check()
    frames_from = parse_source(source, parse_camera_mode(opts.camera_mode) if opts.camera_mode else None)
    if report_options:
        report_options.check()
    rule = None
    if collect_options:
        if not report_options:
            raise EdgeError("--collect sends frames to a host: add --report-to URL, --device-id and --token")
        rule = collect_options.check()[0]
    log = log or Log(enabled=False)
    target = load_model(model, opts.labels, opts.input_range, opts.threads, opts.delegate)
    interpreter, labels = target.interpreter, target.labels
    fingerprint = find_fingerprint(model)
    drift = Drift(fingerprint, opts.drift_thresholds, opts.drift_min_frames) if fingerprint else None
    if opts.top_k > max(len(labels), DEFAULT_TOP_K):  # the default shrinks to fit a model of 2 classes
        raise EdgeError(f"--top-k {opts.top_k}: the model has {len(labels)} classes; give 1 to {len(labels)}")
    truth = (whole_session(opts.truth, labels) if opts.truth else
             read_schedule(opts.truth_schedule, labels) if opts.truth_schedule else None)
    log_file = check_writable(opts.log_file, "--log") if opts.log_file else None
    preview = Preview() if opts.preview else None
    if preview:
        truth = KeyedTruth(truth)
    top_k = min(opts.top_k, len(labels))
    height, width = input_size(interpreter)
    inp, out = input_detail(interpreter), output_detail(interpreter)

    fit = shrink if opts.decode == "fast" else resize

    def prepare(rgb):  # on the reader thread
        return pixels_to_input(fit(rgb, height, width)[None], inp["dtype"], inp["quantization"], target.input_range)

    sensor = frames_from.kind == "imx500"  # the AI Camera's sensor ran the network: its scores come with the frame
    call = (lambda scores: scores) if sensor else invoker(interpreter)
    top_ks = sorted({*default_top_k(len(labels)), top_k})
    recent = deque(maxlen=opts.smooth)
    live = _LiveLine(log)
    named = redact(source)  # a stream URL may carry a password
    about = {**target.facts(), "source": named,
             "options": {"top_k": top_k, "threshold": opts.threshold, "smooth": opts.smooth, "realtime": opts.realtime,
                         "decode": opts.decode}}
    if rule == "wrong" and truth is None:
        raise EdgeError("--collect wrong needs the truth: add --truth LABEL, --truth-schedule FILE or --preview "
                        "(number keys), or collect uncertain, disagree or every:N")
    run_id = uuid.uuid4().hex
    model_sha256 = hashlib.sha256(target.path.read_bytes()).hexdigest() if report_options else None
    reporter = Reporter(report_options, log) if report_options else None  # starts draining an old backlog now
    collector = None
    try:
        if collect_options:
            collector = Collector(collect_options, report_options, labels, run_id, model_sha256, named,
                                  frames_from.live or opts.realtime, log, fingerprint)
        if sensor:
            from edge.imx500_source import SensorReader, network_file

            network = network_file(frames_from.target, target.path.parent if target.source == "bundle" else None)
            about.update(model=str(network), runtime="IMX500 sensor", delegate=None)
            reader = SensorReader(frames_from, network, log=log, tick=TICK)
        else:
            reader = FrameReader(frames_from, prepare=prepare, realtime=opts.realtime, log=log, tick=TICK,
                                 covering=(height, width) if opts.decode == "fast" else None)
    except BaseException:
        for sender in (reporter, collector):
            if sender:
                sender.close()
        raise
    whole = Tally(labels, top_ks, reader.stats, WARMUP, drift)
    reports = (Windows(reporter, report_options, about, labels, top_ks, reader.stats, run_id, model_sha256, drift)
               if reporter else None)
    records = open(log_file, "w", encoding="utf-8") if log_file else None  # noqa: SIM115 -- closed below

    def classify(frame) -> bool:
        """Run the model on a frame and account for it everywhere; True when the run is to end here."""
        start = time.perf_counter()
        raw = call(frame.prepared)
        inference_ms = (time.perf_counter() - start) * 1000 if frame.inference_ms is None else frame.inference_ms
        recent.append(output_to_scores(raw, out["quantization"]).reshape(-1))
        scores = recent[0] if opts.smooth == 1 else np.mean(recent, axis=0)
        top = np.argsort(-scores, kind="stable")[:top_k]
        label = labels[top[0]] if opts.threshold is None or scores[top[0]] >= opts.threshold else UNKNOWN
        true = truth.at(frame.index, frame.seconds) if truth else None
        own = recent[-1] if drift else None  # the frame's own scores (not smoothed), as the fingerprint's were
        done = time.perf_counter()
        frame_ms = (done - frame.captured) * 1000
        whole.add(true, scores, inference_ms, frame_ms, done, own)
        if reports:
            reports.add(true, scores, inference_ms, frame_ms, done, reader.stats, own)
        if collector:
            collector.offer(frame, scores, recent[-1], label, true)
        if records:
            records.write(json.dumps({
                "frame": frame.index, "t": round(frame.seconds, 4), **({"file": frame.name} if frame.name else {}),
                "label": label, "score": float(scores[top[0]]),
                "top_k": [[labels[c], float(scores[c])] for c in top],
                "truth": labels[true] if true is not None else None,
                "latency_ms": round(inference_ms, 3), "frame_ms": round(frame_ms, 3)}) + "\n")
        live.show(label, float(scores[top[0]]), whole, inference_ms)
        if preview:
            shown = overlay(frame.rgb, label, float(scores[top[0]]), whole.frames / (done - whole.started),
                            labels[true] if true is not None else None)
            action = key_action(preview.show(shown), labels)
            if action and action[0] == "quit":
                return True
            if action:
                truth.set(action[1])
        return bool(opts.max_frames and whole.frames >= opts.max_frames)

    reporting = None
    try:
        with stop_signals() as stop:
            for frame in reader:
                if frame is not None:
                    if classify(frame):
                        break
                elif reports:  # no frame for a while: a report may still be due
                    reports.tick(reader.stats)
                # Checked on ticks too: a source that died must not keep the run past --duration.
                if stop or (opts.duration and time.perf_counter() - whole.started >= opts.duration):
                    break
        if stop:
            log(f"{stop.signal}: writing the summary")
    finally:
        ended = time.perf_counter()  # the run's time, without closing the source (up to capture.JOIN) and flushing
        reader.close()
        live.end()
        if preview:
            preview.close()
        if records:
            records.close()
        if reports:
            reporting = reports.close(reader.stats)
        collecting = collector.close() if collector else None
    if not whole.frames:
        raise EdgeError(f"{named} gave no frames{f' before {stop.signal}' if stop else ''}: check the source")
    summary = {**whole.summary(reader.stats, about, ended),
               "source_mode": str(reader.delivers) if reader.delivers else None,
               "reader": {"jpeg_scale": reader.jpeg_scale, "ms": reader.stats.per_frame_ms()}}
    summary["notes"] += reader.stats.notes + _reader_notes(summary, reader.live)
    if not whole.acc.n:
        summary["notes"].append("no frame had a truth (--truth, --truth-schedule or a number key in --preview): "
                                "predictions only, nothing evaluated")
    if stop:
        summary["notes"].append(f"stopped by {stop.signal}")
    if not drift:
        summary["notes"].append(f"the model has no fingerprint, so drift is not watched: {HOW}")
    if collecting:
        summary["collecting"] = collecting
        if collecting["stopped"]:
            summary["notes"].append(f"collecting stopped: {collecting['outbox']} could not be written (a full disk?); "
                                    f"{collecting['stopped']} frames chosen after were not kept")
    if reporting:
        summary["reporting"] = reporting
        if drift:
            summary["drift"]["windows"] = reports.levels
    return summary


def _reader_notes(summary: dict, live: bool) -> list[str]:
    """A note when frames came slower than the model took them: the reader (read, decode, resize) shares
    the cores with the interpreter's threads."""
    reader_ms = sum(v or 0 for v in summary["reader"]["ms"].values())
    inference_ms, threads = summary["latency_ms"]["inference"]["p50"], summary["threads"]
    if live or not inference_ms or reader_ms <= inference_ms:
        return []
    hint = f"; --threads {threads - 1} would leave the reader a core" if threads > 1 else ""
    return [f"the reader took {reader_ms:.2f} ms a frame (read, decode, resize), the model {inference_ms:.2f}: the "
            f"model waited for frames{hint}"]


class Tally:
    """What a run saw over a stretch of frames: field metrics, timings, and what capture lost meanwhile."""

    def __init__(self, labels, top_ks, stats: CaptureStats, warmup: int, drift: Drift | None = None):
        self.acc = Accumulator(labels, top_ks)
        self.drift, self.counts = drift, drift.counts() if drift else None
        self.warmup = warmup
        self.started, self.wall_start = time.perf_counter(), time.time()
        self.at_start = (stats.dropped, stats.failures, stats.reopens, len(stats.skipped))
        self.inference_ms, self.frame_ms, self.done = [], [], []

    @property
    def frames(self) -> int:
        return len(self.done)

    def restart(self) -> None:
        """Time the stretch from now on, keeping the capture counts from the start: what was lost while no
        frame came goes into the next summary made."""
        self.started, self.wall_start = time.perf_counter(), time.time()

    def add(self, true, scores, inference_ms: float, frame_ms: float, done: float, own=None) -> None:
        """`own`: the frame's own scores, for drift (`scores` may be smoothed over frames)."""
        if true is not None:
            self.acc.add(true, scores)
        if own is not None:
            self.counts.add(own)
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
            **self.acc.report(), "frames": self.frames, "evaluated": self.acc.n, "dropped": stats.dropped - dropped,
            "failures": stats.failures - failures, "reopens": stats.reopens - reopens,
            "skipped": {"count": len(stats.skipped) - skipped,
                        "files": [{"path": p, "why": w} for p, w in stats.skipped[skipped:]]},
            # The pace a long session keeps: start-up (opening the source, the first invoke) is not in it.
            "fps": (len(done) - 1) / (done[-1] - done[0]) if len(done) > 1 and done[-1] > done[0] else None,
            "seconds": (time.perf_counter() if end is None else end) - self.started,
            "latency_ms": {"inference": inference, "frame": frame},
            "peak_rss_mb": peak_rss_mb(), **about,
            **({"drift": self.drift.judge(self.counts)} if self.drift else {}),
        }


class Windows:
    """Reporting: a Tally a window of `every` seconds, each closed into a report for the Reporter. A window
    without frames (the source down) is counted, not sent: a report of nothing would only look like one."""

    def __init__(self, reporter: Reporter, options: ReportOptions, about: dict, labels, top_ks, stats, run_id: str,
                 model_sha256: str, drift: Drift | None = None):
        self.reporter, self.options, self.about = reporter, options, about
        self.labels, self.top_ks, self.drift = labels, top_ks, drift
        self.levels = {}  # windows sent, by drift level
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
        if self.drift:
            level = summary["drift"]["level"]
            self.levels[level] = self.levels.get(level, 0) + 1
        self.reporter.submit(make_report(summary, self.options.device_id, self.run_id, self.seq, self.model_sha256,
                                         window.wall_start, time.time()))
        self.seq += 1
        self.current = Tally(self.labels, self.top_ks, stats, 0, self.drift)

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

    def show(self, label, score, tally, latency) -> None:
        now = time.perf_counter()
        if not self.enabled or now - self.last < 0.2:
            return
        self.last = now
        acc = tally.acc
        field = f"  field acc {accuracy(acc.cm):.3f} on {acc.n}" if acc.n else ""
        sys.stderr.write(f"\r{label[:24]:<24} {score:.3f}  {tally.frames / (now - tally.started):6.1f} fps  "
                         f"{latency:7.2f} ms{field}   ")
        sys.stderr.flush()

    def end(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
