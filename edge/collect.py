"""`edge run --collect`: keep the frames that matter and send them home, to be labelled and trained on.

A rule chooses frames on the frame loop, where it costs a comparison or two; at most `max_per_hour` are
kept in any hour (a drift comes in bursts: the cap takes the first of a burst and waits out the rest).
A kept frame goes to a sender thread, which encodes it (a camera's MJPG frame is kept as the camera sent
it, not decoded and encoded again), writes it to a bounded local store and posts it to the host's
`/api/v1/frames` like reports: nothing is lost across outages, the oldest go first when the store is
full, and are counted. A camera's loop never waits: with the sender behind, a frame is passed over and
counted (`busy`); a file's or folder's waits for it, as its reader waits for the model, so that a replay
keeps what its rule chooses. With the store's disk full, collection stops, counted, and the run goes on.
"""

import json
import time
from collections import Counter, deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.errors import OptionError, choose, finite, whole
from edge.frame_record import make_record
from edge.options import option
from edge.outbox import LIMIT, Outbox
from edge.report import new_id
from edge.reporter import ReportOptions, Sender

RULES = {
    "uncertain": "the margin between the call's score and the next is below MARGIN [the model's own: `margin`]",
    "wrong": "the call is not the truth (--truth, --truth-schedule or the number keys of --preview)",
    "disagree": "the frame's own call differs from the one most of the 5 frames before it agreed on",
    "every": "every Nth frame (every:N): a sample of all the device sees",
}
MARGIN = 0.2  # uncertain's margin for a model without a fingerprint
AGREEING = (5, 4)  # frames before, of which this many share a call for "disagree"
MAX_PER_HOUR = 60
STORE = Path("~/.local/state/edge/frames.db")
STORE_MB = 200.0
BATCH = 4  # frames a POST: a 640x480 JPEG is some 50-100 KB, a third more in base64
QUEUED = 8  # frames waiting for the sender thread; more are passed over
QUALITY = 90  # JPEG quality of frames that did not come as JPEG


@dataclass(frozen=True)
class CollectOptions:
    """Which frames `edge run` sends home, and how many it keeps (RunOptions.collecting). Its options go by
    the keywords of `edge run`'s flags (collect, collect_max_per_hour, ...)."""

    rule: str = option(
        help="Send the host the frames that matter, as JPEG with the model's scores, to label and "
        "train on: uncertain[:MARGIN] (the call's margin over the next class below MARGIN [below what "
        "4 in 5 validation images had, from the fingerprint; else 0.2]), wrong (the call is not the "
        "truth), disagree (a frame's call differs from the one its 5 predecessors agreed on), or "
        "every:N (every Nth frame).",
        keyword="collect",
    )
    max_per_hour: float = option(MAX_PER_HOUR, "Most frames kept in any hour.", keyword="collect_max_per_hour")
    store: Path = option(STORE, "Where collected frames wait until the host has them.", keyword="collect_store")
    store_mb: float = option(
        STORE_MB, "Most MB the store holds; the oldest frames go first, counted.", keyword="collect_store_mb"
    )

    def __post_init__(self):
        if not (finite(self.max_per_hour) and self.max_per_hour >= 1):
            raise OptionError(
                f"--collect-max-per-hour {self.max_per_hour}: give a number of frames, at least 1, e.g. {MAX_PER_HOUR}"
            )
        if not (finite(self.store_mb) and self.store_mb >= 1):
            raise OptionError(f"--collect-store-mb {self.store_mb}: give a size in MB, at least 1, e.g. {STORE_MB:g}")
        parse_rule(self.rule)


def parse_rule(text) -> tuple[str, float | None]:
    """'uncertain', 'uncertain:0.1', 'wrong', 'disagree', 'every:30' -> (name, value); uncertain's value is
    None when the model's fingerprint is to give it (`margin`)."""
    name, colon, value = str(text or "").strip().partition(":")
    name = choose("--collect", name, RULES)
    if name == "uncertain":
        if not colon:
            return name, None
        try:
            given = float(value)
        except ValueError:
            given = None
        if given is None or not (finite(given) and 0 < given <= 1):
            raise OptionError(f"--collect {text}: give the margin as a number above 0 and up to 1, e.g. uncertain:0.2")
        return name, given
    if name == "every":
        n = int(value) if value.strip().isdigit() else 0
        if not whole(n, 1):
            raise OptionError(f"--collect {text}: give every:N, N a whole number of frames, at least 1, e.g. every:100")
        return name, n
    if colon:
        raise OptionError(f"--collect {text}: '{name}' takes no value; give --collect {name}")
    return name, None


class Collector:
    """Chooses frames by the rule and hands them to a sender of their own. `live`: frames come from a camera
    or stream (or a file played in real time), and the loop must not wait for the sender."""

    def __init__(
        self,
        options: CollectOptions,
        report: ReportOptions,
        labels: list[str],
        run_id: str,
        model_sha256: str,
        source: str,
        live: bool = True,
        log=None,
        fingerprint: dict | None = None,
    ):
        self.rule, self.value = parse_rule(options.rule)
        if self.rule == "uncertain" and self.value is None:
            self.value = margin(fingerprint)
        self.options, self.labels, self.live = options, labels, live
        self.meta = {"device_id": report.device_id, "run_id": run_id, "model_sha256": model_sha256, "source": source}
        store = Outbox(
            Path(options.store).expanduser(), "frames", report.device_id, LIMIT, int(options.store_mb * 1e6), log
        )  # refuses the reports' outbox: a file holds one kind
        self.sender = Sender(report, "/api/v1/frames", "frames", store, BATCH, self._text, log, QUEUED)
        self.kept: deque[float] = deque()  # monotonic times of the frames kept in the last hour
        self.calls: deque[int] = deque(maxlen=AGREEING[0])
        self.offered = 0
        self.counts = {"chosen": 0, "kept": 0, "capped": 0, "busy": 0, "stopped": 0}

    def offer(self, frame, scores: np.ndarray, own: np.ndarray, label: str, true: int | None) -> None:
        """A frame the run called `label` on `scores` (`own`: its own, unsmoothed), with truth `true`."""
        reason = self._reason(scores, own, label, true)
        self.offered += 1
        if reason is None:
            return
        counts = self.counts
        counts["chosen"] += 1
        if self.sender.unstored:  # the store's disk is full: collection stops
            counts["stopped"] += 1
            return
        now = time.monotonic()
        while self.kept and now - self.kept[0] >= 3600:
            self.kept.popleft()
        if len(self.kept) >= self.options.max_per_hour:
            counts["capped"] += 1
            return
        top = np.argsort(-scores, kind="stable")[: min(5, len(scores))]
        meta = {
            **self.meta,
            "id": new_id(),
            "time": time.time(),
            "frame": frame.index,
            "reason": reason,
            "label": label,
            "top_k": [[self.labels[c], round(float(scores[c]), 5)] for c in top],
            "scores": [round(float(s), 5) for s in scores],
            "labels": self.labels,
            "truth": self.labels[true] if true is not None else None,
        }
        pixels = (frame.raw, False) if frame.raw is not None else (frame.rgb, True)
        if not self.sender.submit((pixels, meta), wait=not self.live):
            counts["busy"] += 1
            return
        self.kept.append(now)
        counts["kept"] += 1

    def _reason(self, scores, own, label, true) -> str | None:
        if self.rule == "every":
            assert self.value, "parse_rule gives every:N its N"
            return "every" if self.offered % self.value == 0 else None
        if self.rule == "wrong":
            return "wrong" if true is not None and label != self.labels[true] else None
        if self.rule == "uncertain":
            second, first = np.partition(scores, -2)[-2:]
            return "uncertain" if first - second < self.value else None
        call = int(np.argmax(own))
        before = Counter(self.calls).most_common(1)
        self.calls.append(call)
        return "disagree" if before and before[0][1] >= AGREEING[1] and call != before[0][0] else None

    def _text(self, item) -> str | None:
        """On the sender thread: the frame's record as JSON text."""
        (pixels, is_rgb), meta = item
        jpeg = to_jpeg(pixels, is_rgb)
        return json.dumps(make_record(jpeg, meta), separators=(",", ":")) if jpeg else None

    def close(self) -> dict:
        """Stop the sender (after its flush time); the tally for the run summary."""
        return {
            "rule": self.rule + (f":{self.value:g}" if self.value is not None else ""),
            "max_per_hour": self.options.max_per_hour,
            **self.counts,
            **self.sender.close(),
        }


def margin(fingerprint: dict | None) -> float:
    """uncertain's margin when none is given: the lowest edge of the fingerprint's margin histogram, under
    which at most a fifth of the validation images fell (its edges are quantiles), so "uncertain" means less
    sure than most validation images were. A fixed margin misses an int8 model sure of itself even when
    wrong: in benchmarks/field_loop_bench.py, 0.2 kept 9-16 of 160 frames in a drift that made 47-71 wrong.
    Without a fingerprint (or a histogram of one bin), MARGIN."""
    edges = ((fingerprint or {}).get("histograms") or {}).get("margin", {}).get("edges") or []
    return float(edges[0]) if edges and 0 < edges[0] <= 1 else MARGIN


def to_jpeg(frame: np.ndarray, is_rgb: bool = False) -> bytes | None:
    """A frame as JPEG: as a source delivered it (`edge.preprocess.delivered_as`), JPEG bytes as they came (a
    camera's MJPG), YUYV or BGR encoded; or (`is_rgb`) RGB pixels encoded. None if encoding fails."""
    import cv2  # here: the CLI reads this module's defaults, and OpenCV takes most of a second to import

    from edge.preprocess import delivered_as

    kind = None if is_rgb else delivered_as(frame)
    if kind == "jpeg":
        return frame.tobytes()
    if kind == "yuyv":
        frame = cv2.cvtColor(frame, cv2.COLOR_YUV2BGR_YUYV)
    elif is_rgb:
        frame = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, QUALITY])
    return data.tobytes() if ok else None
