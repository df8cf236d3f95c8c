"""`edge run`, the loop: classify frames from a camera (or a file, stream, folder) on the device, and evaluate
live against ground truth in the field. numpy, OpenCV and the TFLite interpreter only.

The reader thread captures and prepares frame n+1 (colour, resize, quantize) while the model runs on
frame n. Field metrics stream through the same accumulator as `edge eval`, so the summary has the same
metric keys as `edge eval --json`.
"""

import hashlib
import json
import sys
import time
import uuid
from collections import deque
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.calls import HOLD, Caller, CallOptions, device_name
from edge.capture import FrameReader, parse_camera_mode, parse_source, redact
from edge.collect import CollectOptions, Collector, parse_rule
from edge.drift import HOW, MIN_FRAMES, THRESHOLDS, Drift, check_min_frames, parse_thresholds
from edge.drift import find as find_fingerprint
from edge.errors import EdgeError, OptionError, check_keywords, choose, finite, whole
from edge.eval.evaluate import WARMUP, default_top_k
from edge.eval.metrics import accuracy
from edge.files import check_writable
from edge.follow import HEALTHY, Follower, FollowOptions, healthy, name_of, read_state, starting
from edge.health import Health
from edge.interpreter import input_detail, input_size, invoker, output_detail
from edge.model import load_model
from edge.options import option, options, take
from edge.preprocess import DECODES, output_to_scores, pixels_to_input, resize, shrink
from edge.preview import Preview, key_action, overlay
from edge.progress import Log
from edge.reporter import Reporter, ReportOptions
from edge.results import RunResult
from edge.signals import Stop, stop_signals
from edge.truth import KeyedTruth, read_schedule, whole_session
from edge.windows import Tally, Windows

UNKNOWN = "unknown"
DEFAULT_TOP_K = 3
TICK = 0.25  # seconds the loop waits for a frame before it looks at the clock and for a stop signal anyway
MAX_SMOOTH = 1000  # frames averaged: each frame averages them all, and a longer window no longer follows the scene


@dataclass(frozen=True)
class RunOptions:
    """The options of `edge run` (and edge.run), with the report and collect options nested, as MediaPipe
    Model Maker nests its groups: `reporting` sends a report a window to a host, `collecting` (with
    `reporting`) the frames its rule chooses, `calling` the calls to an MQTT broker or a web hook."""

    camera_mode: str | None = option(
        None,
        "Ask the camera for WIDTHxHEIGHT[@FPS][/FOURCC], e.g. 1280x720@30/MJPG "
        "(USB cameras: MJPG reaches higher rates than the default YUYV).",
    )
    labels: Path | None = option(None, "Class names of a bare .tflite, one a line in output order.")
    input_range: tuple[float, float] | str | None = option(
        None, "Float range a bare .tflite expects for pixels 0..255, e.g. -1,1 or 0,1 [0,255]."
    )
    threads: int | None = option(None, "Interpreter threads [all cores].")
    delegate: str | None = option(
        None, "Run on a hardware accelerator: edgetpu [the CPU; the Edge TPU for *_edgetpu.tflite files]."
    )
    top_k: int = option(DEFAULT_TOP_K, "Classes per frame in the log.")
    threshold: float | None = option(None, "Below this score the frame is 'unknown'.")
    smooth: int = option(1, "Average the scores of the last N frames.")
    max_frames: int | None = option(None, "Stop after N frames.")
    duration: float | None = option(None, "Stop after S seconds.")
    realtime: bool = option(False, "Pace a video file like a camera (newest frame only, drops counted).")
    decode: str = option(
        "fast",
        "fast: decode MJPG frames at the smallest JPEG scale that covers the model's input "
        "and resize in steps; full: decode every frame whole and area-resize it, as training did "
        "(slower; to check the fast path).",
    )
    truth: str | None = option(None, "Field evaluation: the label of everything seen in this session.")
    truth_schedule: Path | None = option(
        None, 'Field evaluation: JSON list of {"start_frame", "end_frame", "label"} or {"start_s", "end_s", "label"}.'
    )
    preview: bool = option(
        False,
        "Show the frames with the prediction in a window; number keys set the truth (1 = "
        "first label, 0 = none), q quits. Needs a display and a non-headless OpenCV.",
    )
    log_file: Path | None = option(None, "Write one JSON record a frame (JSONL).", flag="--log")
    # Given as "WATCH,DRIFT" or a pair; held as the pair.
    drift_thresholds: tuple[float, float] | str = option(
        f"{THRESHOLDS[0]},{THRESHOLDS[1]}",
        "WATCH,DRIFT: the "
        "population stability index against the model's fingerprint "
        "from which a window is at watch, and at drift.",
    )
    drift_min_frames: int = option(MIN_FRAMES, "Fewer frames in a window: too few to judge drift.")
    reporting: ReportOptions | None = None
    collecting: CollectOptions | None = None
    following: FollowOptions | None = None
    calling: CallOptions | None = None

    def __post_init__(self):
        choose("--decode", self.decode, DECODES)
        object.__setattr__(self, "drift_thresholds", parse_thresholds(self.drift_thresholds))
        check_min_frames(self.drift_min_frames)
        problems = [
            (not whole(self.top_k, 1), f"--top-k {self.top_k} must be a whole number, at least 1"),
            (
                self.threshold is not None and not (finite(self.threshold) and 0 <= self.threshold <= 1),
                f"--threshold {self.threshold} must be a number from 0 to 1",
            ),
            (
                not whole(self.smooth, 1, MAX_SMOOTH),
                f"--smooth {self.smooth} must be at least 1 (1: no smoothing) and at most {MAX_SMOOTH} frames",
            ),
            (
                self.max_frames is not None and not whole(self.max_frames, 1),
                f"--max-frames {self.max_frames} must be a whole number, at least 1",
            ),
            (
                self.duration is not None and not (finite(self.duration) and self.duration > 0),
                f"--duration {self.duration}: give a positive number of seconds, e.g. 60",
            ),
            (
                self.truth is not None and not str(self.truth).strip(),
                "--truth is empty: give one of the model's labels, or leave --truth out",
            ),
            (self.truth is not None and self.truth_schedule is not None, "give --truth or --truth-schedule, not both"),
            (
                self.collecting is not None and self.reporting is None,
                "--collect sends frames to a host: add --report-to URL, --device-id and --token",
            ),
            (
                self.following is not None and self.reporting is None,
                "--follow-models hears the version to run in the host's answers to reports: add --report-to URL, "
                "--device-id and --token",
            ),
            (
                self.collecting is not None
                and parse_rule(self.collecting.rule)[0] == "wrong"
                and self.truth is None
                and self.truth_schedule is None
                and not self.preview,
                "--collect wrong needs the truth: add --truth LABEL, --truth-schedule FILE or --preview (number keys), "
                "or collect uncertain, disagree or every:N",
            ),
        ]
        for bad, message in problems:
            if bad:
                raise OptionError(message)


OPTION_GROUPS = (RunOptions, ReportOptions, CollectOptions, FollowOptions, CallOptions)  # what edge run's options make


def run_options(given: dict) -> RunOptions:
    """RunOptions from keywords, as `edge run` and edge.run take them (a nested group's options by their
    keywords: report_to, collect, ...); reporting with report_to, collecting with collect as well."""
    given = dict(given)
    check_keywords(given, [keyword for cls in OPTION_GROUPS for keyword in options(cls)], "edge run")
    report, collect, follow, call = (
        take(ReportOptions, given),
        take(CollectOptions, given),
        FollowOptions(**take(FollowOptions, given)),
        take(CallOptions, given),
    )
    outlet = call.get("publish") or call.get("webhook")
    if not outlet and (call.get("hold", HOLD) != HOLD or call.get("required")):
        raise OptionError(
            "--hold and --calls-required are for calls: add --publish mqtt://HOST/PREFIX or --webhook URL"
        )
    if "url" not in report and ("token" in report or ("device_id" in report and not outlet)):
        raise OptionError("--token and --device-id are for reporting: add --report-to URL")
    if "rule" not in collect and collect:
        raise OptionError(
            "--collect-max-per-hour, --collect-store and --collect-store-mb are for collecting frames: "
            "add --collect RULE"
        )
    return RunOptions(
        **take(RunOptions, given),
        reporting=ReportOptions(**report) if "url" in report else None,
        collecting=CollectOptions(**collect) if "rule" in collect else None,
        following=follow if follow.follow else None,
        calling=CallOptions(**call, device=report.get("device_id")) if outlet else None,
    )


def run(model, source, options: RunOptions | None = None, log: Log | None = None) -> RunResult:
    """Run `model` (bundle or .tflite) on `source` until it ends, --max-frames, --duration, or SIGINT (Ctrl-C),
    SIGTERM or SIGHUP (edge.signals); returns the summary. With `options.reporting`, a report a window with
    frames goes to the host (`edge serve`); with `options.collecting` as well, the frames its rule chooses."""
    runner = Runner(model, source, options or RunOptions(), log or Log(enabled=False))
    with runner:
        runner.loop()
    return runner.summary()


class Runner:
    """One run's life cycle (after pycoral's PipelinedModelRunner): made (options checked, the model loaded,
    nothing opened yet), opened (preview, log, reporter, collector, and the reader thread last, all on one
    ExitStack, so that an error at any step closes what came before), looped (a frame at a time; a report
    window closes when due), closed (the reader first, then the senders flush), summarised."""

    reader: FrameReader  # opened by __enter__, as are the tally and the senders
    tally: Tally

    def __init__(self, model, source, opts: RunOptions, log: Log):
        self.frames_from = parse_source(source, parse_camera_mode(opts.camera_mode) if opts.camera_mode else None)
        self.opts, self.log = opts, log
        self.given, self.version = model, None  # a followed version runs instead of the model given, once active
        active = starting(opts.following, log) if opts.following else None
        if opts.following and active is not None:
            model, self.version = active, read_state(opts.following.models)["active"]
        self.target = target = self._load(model)
        self.labels = labels = target.labels
        self.fingerprint = find_fingerprint(model, len(labels))
        self.drift = Drift(self.fingerprint, opts.drift_thresholds, opts.drift_min_frames) if self.fingerprint else None
        if opts.top_k > max(len(labels), DEFAULT_TOP_K):  # the default shrinks to fit a model of 2 classes
            raise EdgeError(f"--top-k {opts.top_k}: the model has {len(labels)} classes; give 1 to {len(labels)}")
        self.truth = _truth(opts, labels)
        self.log_file = check_writable(opts.log_file, "--log") if opts.log_file else None
        self.top_k = min(opts.top_k, len(labels))
        self.top_ks = sorted({*default_top_k(len(labels)), self.top_k})
        self.height, self.width = input_size(target.interpreter)
        self.input, self.output = input_detail(target.interpreter), output_detail(target.interpreter)
        self.sensor = self.frames_from.kind == "imx500"  # the AI Camera's sensor ran the network: scores come along
        self.call = (lambda scores: scores) if self.sensor else invoker(target.interpreter)
        self.named = redact(source)  # a stream URL may carry a password
        self.about = {
            **target.facts(),
            "source": self.named,
            "options": {
                "top_k": self.top_k,
                "threshold": opts.threshold,
                "smooth": opts.smooth,
                "realtime": opts.realtime,
                "decode": opts.decode,
            },
            **({"model_version": self.version} if self.version else {}),
        }
        self.run_id = uuid.uuid4().hex
        self.model_sha256 = (
            hashlib.sha256(target.path.read_bytes()).hexdigest() if opts.reporting or opts.calling else None
        )
        self.caller_name = device_name(opts.calling.device) if opts.calling else None
        self.recent: deque[np.ndarray] = deque(maxlen=opts.smooth)
        self.live = _LiveLine(log)
        self.preview: Preview | None = None
        self.records: _Records | None = None
        self.reporter: Reporter | None = None
        self.collector: Collector | None = None
        self.caller: Caller | None = None
        self.reports: Windows | None = None
        self.follower: Follower | None = None
        self.swaps: list[dict] = []
        self.since_swap = 0
        self.restart_for: str | None = None
        self.reported: dict | None = None  # the senders' tallies, once closed
        self.collected: dict | None = None
        self.called: dict | None = None
        self.stop: Stop | None = None
        self.ended: float | None = None
        self._stack = ExitStack()

    def __enter__(self) -> "Runner":
        with ExitStack() as stack:  # until everything is open, an error closes what was
            self._open(stack)
            self._stack = stack.pop_all()
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def _open(self, stack: ExitStack) -> None:
        """Open everything the run needs; each step's closing goes on `stack`, and runs in reverse order."""
        opts, reporting = self.opts, self.opts.reporting
        if opts.preview:
            self.preview = Preview()
            stack.callback(self.preview.close)
        if self.log_file:
            self.records = _Records(self.log_file)
            stack.callback(self.records.close)
        if opts.following:
            assert reporting and reporting.token  # RunOptions and ReportOptions saw to both
            self.follower = Follower(
                opts.following,
                reporting.url.rstrip("/"),
                reporting.token,
                opts.threads,
                opts.delegate,
                self.log,
                lambda: self._load(self.given),
                self.version,
                prepare=self._prepared,
            )
            stack.callback(self.follower.close)
        if opts.calling:
            assert self.caller_name  # named with the options
            self.caller = Caller(opts.calling, self.caller_name, self.log)
            stack.callback(self._close_calling, self.caller)
        if reporting:
            self.reporter = Reporter(reporting, self.log, self.follower.told if self.follower else None)
            stack.callback(self._close_reporting, self.reporter)  # starts draining an old backlog now
        if opts.collecting:
            assert reporting and self.model_sha256  # RunOptions saw to it: collecting comes with reporting
            self.collector = Collector(
                opts.collecting,
                reporting,
                self.labels,
                self.run_id,
                self.model_sha256,
                self.named,
                self.frames_from.live or opts.realtime,
                self.log,
                self.fingerprint,
            )
            stack.callback(self._close_collecting, self.collector)
        stack.callback(self.live.end)
        self.reader = stack.enter_context(self._open_reader())
        self.tally = Tally(self.labels, self.top_ks, self.reader.stats, WARMUP, self.drift)
        if self.reporter:
            assert reporting and self.model_sha256  # the reporter reports with the model's hash
            self.reports = Windows(
                self.reporter,
                reporting,
                self.about,
                self.labels,
                self.top_ks,
                self.reader.stats,
                self.run_id,
                self.model_sha256,
                self.drift,
                self.caller.window if self.caller else None,
                Health(Path(reporting.outbox).expanduser().parent, self._asked_fps()),
            )

    def _asked_fps(self) -> float | None:
        """The frame rate asked of a camera (--camera-mode), or the one a live source announces."""
        mode, delivers = self.frames_from.mode, self.reader.delivers
        if mode and mode.fps:
            return mode.fps
        return delivers.fps if self.frames_from.live and delivers and delivers.fps else None

    def _load(self, model):
        """The model given (with its labels and input range, for a bare .tflite), or a followed bundle."""
        opts, given = self.opts, model is self.given
        return load_model(
            model, opts.labels if given else None, opts.input_range if given else None, opts.threads, opts.delegate
        )

    def _open_reader(self) -> FrameReader:
        """The reader thread: it captures and prepares frame n+1 while the model runs on frame n."""
        if not self.sensor:
            return FrameReader(
                self.frames_from,
                prepare=self._prepare,
                realtime=self.opts.realtime,
                log=self.log,
                tick=TICK,
                covering=(self.height, self.width) if self.opts.decode == "fast" else None,
            )
        from edge.imx500_source import SensorReader, network_file

        target = self.target
        network = network_file(self.frames_from.target, target.path.parent if target.source == "bundle" else None)
        self.about.update(model=str(network), runtime="IMX500 sensor", delegate=None)
        return SensorReader(self.frames_from, network, log=self.log, tick=TICK)

    def _prepare(self, rgb):
        """On the reader thread: a frame as the model's input."""
        fit = shrink if self.opts.decode == "fast" else resize
        return pixels_to_input(
            fit(rgb, self.height, self.width)[None],
            self.input["dtype"],
            self.input["quantization"],
            self.target.input_range,
        )

    def _close_reporting(self, reporter: Reporter) -> None:
        # the last window goes out too; without windows yet, nothing was reported
        self.reported = self.reports.close(self.reader.stats) if self.reports else reporter.close()

    def _close_collecting(self, collector: Collector) -> None:
        self.collected = collector.close()

    def _close_calling(self, caller: Caller) -> None:
        self.called = caller.close()

    def loop(self) -> None:
        """Classify frames until the source ends, --max-frames, --duration or a stop signal."""
        opts, reader, reports = self.opts, self.reader, self.reports
        with stop_signals() as stop:
            self.stop = stop
            for frame in reader:
                ready = self.follower.take() if self.follower and self.follower.ready else None
                if ready and self._swap(ready, frame):
                    break
                if self.follower and len(self.follower.failed) != len(self.about.get("model_refused", ())):
                    self._refused(self.follower)
                if self.caller and (refused := self.caller.refused()):
                    raise EdgeError(f"--calls-required: {refused}")
                if frame is not None:
                    if self.classify(frame):
                        break
                elif reports:  # no frame for a while: a report may still be due
                    reports.tick(reader.stats)
                # Checked on ticks too: a source that died must not keep the run past --duration.
                if stop or (opts.duration and time.perf_counter() - self.tally.started >= opts.duration):
                    break
        if stop:
            self.log(f"{stop.signal}: writing the summary")
        self.ended = time.perf_counter()  # the run's time, without closing the source (up to capture.JOIN) and flushing

    def classify(self, frame) -> bool:
        """Run the model on a frame and account for it everywhere; True when the run is to end here."""
        opts, labels, recent = self.opts, self.labels, self.recent
        start = time.perf_counter()
        raw = self.call(frame.prepared)
        inference_ms = (time.perf_counter() - start) * 1000 if frame.inference_ms is None else frame.inference_ms
        recent.append(output_to_scores(raw, self.output["quantization"]).reshape(-1))
        scores = recent[0] if opts.smooth == 1 else np.mean(recent, axis=0)
        top = np.argsort(-scores, kind="stable")[: self.top_k]
        label = labels[top[0]] if opts.threshold is None or scores[top[0]] >= opts.threshold else UNKNOWN
        true = self.truth.at(frame.index, frame.seconds) if self.truth else None
        own = recent[-1] if self.drift else None  # the frame's own scores (not smoothed), as the fingerprint's were
        done = time.perf_counter()
        frame_ms = (done - frame.captured) * 1000
        self.tally.add(true, scores, inference_ms, frame_ms, done, own)
        if self.reports:
            self.reports.add(true, scores, inference_ms, frame_ms, done, self.reader.stats, own)
        if self.collector:
            self.collector.offer(frame, scores, recent[-1], label, true)
        if self.caller:
            self.caller.frame(label, float(scores[top[0]]), frame.index, self._model_named)
        if self.records:
            self.records.write(
                {
                    "frame": frame.index,
                    "t": round(frame.seconds, 4),
                    **({"file": frame.name} if frame.name else {}),
                    "label": label,
                    "score": float(scores[top[0]]),
                    "top_k": [[labels[c], float(scores[c])] for c in top],
                    "truth": labels[true] if true is not None else None,
                    "latency_ms": round(inference_ms, 3),
                    "frame_ms": round(frame_ms, 3),
                }
            )
        self.live.show(label, float(scores[top[0]]), self.tally, inference_ms)
        self.since_swap += 1
        if self.follower and self.since_swap == HEALTHY:  # the version that runs did not crash the run
            healthy(self.follower.options)
        if self.preview and self._show(self.preview, frame, label, float(scores[top[0]]), true, done):
            return True
        return bool(opts.max_frames and self.tally.frames >= opts.max_frames)

    def _model_named(self) -> dict:
        """The model a call was made by, as events name it."""
        return {"version": name_of(self.version), "sha256": self.model_sha256}

    def _prepared(self, model) -> tuple:
        """On the follower's thread: a checked model with its fingerprint and its file's sha256."""
        folder = model.path.parent if model.source == "bundle" else model.path
        return model, find_fingerprint(folder, len(model.labels)), hashlib.sha256(model.path.read_bytes()).hexdigest()

    def _swap(self, ready: tuple, frame) -> bool:
        """Swap in the version the follower checked, between two frames (the camera stays open); True when it
        takes other labels or another input, and the run is to end so its service starts it (Restart=always)."""
        version, (model, fingerprint, sha256) = ready
        name = name_of(version) or f"the model given ({self.given})"
        new = input_detail(model.interpreter)
        same_input = (
            model.labels == self.labels
            and model.input_range == self.target.input_range
            and list(new["shape"]) == list(self.input["shape"])
            and new["dtype"] == self.input["dtype"]
            and tuple(new["quantization"]) == tuple(self.input["quantization"])
        )
        if not same_input:  # the reader prepares frames for the input that runs
            self.restart_for = name
            self.log(f"{name} takes other labels or another input: it runs from the next start")
            return True
        start = time.perf_counter()
        self.target, self.version = model, version if name_of(version) else None
        self.call, self.output = invoker(model.interpreter), output_detail(model.interpreter)
        self.fingerprint, self.model_sha256 = fingerprint, sha256
        self.drift = Drift(fingerprint, self.opts.drift_thresholds, self.opts.drift_min_frames) if fingerprint else None
        # A new dict: the window under way goes out with the one it was made under.
        kept = {key: value for key, value in self.about.items() if key != "model_version"}
        self.about = {
            **kept,
            **model.facts(),
            "source": kept["source"],  # the frames', not the model's kind
            **({"model_version": self.version} if self.version else {}),
        }
        if self.reports:
            self.reports.switch(self.reader.stats, self.model_sha256, self.drift, self.about)
        if self.collector:
            self.collector.meta["model_sha256"] = self.model_sha256
        self.swaps.append(
            {
                "frame": frame.index if frame else None,
                "to": name,
                "ms": round((time.perf_counter() - start) * 1000, 2),
                "at": time.time(),
            }
        )
        self.since_swap = 0
        self.log(f"now running {name}")
        return False

    def _refused(self, follower: Follower) -> None:
        """The versions the follower refused, and why, go into every report from now on: the host's rollout
        learns of them (edge.server.rollouts_store). A new dict: the reports made so far keep theirs."""
        self.about = {**self.about, "model_refused": dict(follower.failed)}
        if self.reports:
            self.reports.about = self.about

    def _show(self, preview: Preview, frame, label: str, score: float, true, done: float) -> bool:
        """The frame in the preview window; True when q was pressed. A number key sets the truth from now on."""
        labels, tally = self.labels, self.tally
        shown = overlay(
            frame.rgb, label, score, tally.frames / (done - tally.started), labels[true] if true is not None else None
        )
        action = key_action(preview.show(shown), labels)
        if action and action[0] == "quit":
            return True
        if action:
            self.truth.set(action[1])
        return False

    def summary(self) -> RunResult:
        """The run's summary, once it is closed: the metrics of `edge eval`, timings, capture, notes, and what was
        sent; built from the report windows' own summary (a dict, as reports carry it)."""
        tally, reader, stop = self.tally, self.reader, self.stop
        if not tally.frames:
            raise EdgeError(f"{self.named} gave no frames{f' before {stop.signal}' if stop else ''}: check the source")
        summary = {
            **tally.summary(reader.stats, self.about, self.ended),
            "source_mode": str(reader.delivers) if reader.delivers else None,
            "reader": {"jpeg_scale": reader.jpeg_scale, "ms": reader.stats.per_frame_ms()},
        }
        notes = summary["notes"]
        notes += reader.stats.notes + _reader_notes(summary, reader.live)
        if not tally.acc.n:
            notes.append(
                "no frame had a truth (--truth, --truth-schedule or a number key in --preview): "
                "predictions only, nothing evaluated"
            )
        if stop:
            notes.append(f"stopped by {stop.signal}")
        if not self.drift:
            notes.append(f"the model has no fingerprint, so drift is not watched: {HOW}")
        if self.called:
            summary["calling"] = self.called
        if self.collected:
            summary["collecting"] = collecting = self.collected
            if collecting["stopped"]:
                notes.append(
                    f"collecting stopped: {collecting['outbox']} could not be written (a full disk?); "
                    f"{collecting['stopped']} frames chosen after were not kept"
                )
        if self.follower:
            summary["following"] = {
                "version": name_of(self.version),
                "swaps": self.swaps,
                "refused": self.follower.failed,
                "restart_for": self.restart_for,
                "downloaded_bytes": self.follower.counts["bytes"],
            }
            if self.restart_for:
                notes.append(
                    f"ended to run {self.restart_for}, which takes other labels or another input: it runs "
                    "from the next start (edge package's service restarts at once)"
                )
        if self.reported:
            summary["reporting"] = self.reported
            if self.tally.drift and self.reports:  # the run's drift (its first model's) and the windows'
                summary["drift"]["windows"] = self.reports.levels
        return RunResult(**summary)


def _truth(opts: RunOptions, labels: list[str]):
    """What the truth is and when, from the options; None: unknown, unless number keys in --preview give it."""
    truth = (
        whole_session(opts.truth, labels)
        if opts.truth
        else read_schedule(opts.truth_schedule, labels)
        if opts.truth_schedule
        else None
    )
    return KeyedTruth(truth) if opts.preview else truth


class _Records:
    """--log: one JSON line a frame. A file that cannot be opened or written (a disk not mounted, a full one) is
    the user's to fix, and says so."""

    def __init__(self, path: Path):
        self.path = path
        with self._trouble("opened", "check that its folder exists (a disk not mounted?) and can be written"):
            self.file = open(path, "w", encoding="utf-8")  # noqa: SIM115 -- closed by close()

    def write(self, record: dict) -> None:
        with self._trouble("written", "free space on its disk, or give --log another file"):
            self.file.write(json.dumps(record) + "\n")

    def close(self) -> None:  # the file is closed even when its last lines cannot be written
        with self._trouble("written", "free space on its disk, or give --log another file"):
            self.file.close()

    @contextmanager
    def _trouble(self, what: str, remedy: str):
        try:
            yield
        except OSError as e:
            raise EdgeError(f"--log {self.path} cannot be {what} ({e.strerror or e}): {remedy}") from None


def _reader_notes(summary: dict, live: bool) -> list[str]:
    """A note when frames came slower than the model took them: the reader (read, decode, resize) shares
    the cores with the interpreter's threads."""
    reader_ms = sum(v or 0 for v in summary["reader"]["ms"].values())
    inference_ms, threads = summary["latency_ms"]["inference"]["p50"], summary["threads"]
    if live or not inference_ms or reader_ms <= inference_ms:
        return []
    hint = f"; --threads {threads - 1} would leave the reader a core" if threads > 1 else ""
    return [
        f"the reader took {reader_ms:.2f} ms a frame (read, decode, resize), the model {inference_ms:.2f}: the "
        f"model waited for frames{hint}"
    ]


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
        sys.stderr.write(
            f"\r{label[:24]:<24} {score:.3f}  {tally.frames / (now - tally.started):6.1f} fps  "
            f"{latency:7.2f} ms{field}   "
        )
        sys.stderr.flush()

    def end(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
