"""Drift on the device, without truth: each window of `edge run` against the model's fingerprint.

The fingerprint (`edge.eval.fingerprint`) holds what the model's scores looked like on its validation images:
histograms of the top-1 score, the margin and the entropy, and how often each class was predicted. A frame
costs one bin count a statistic (the counts of a window grow as frames come, binned 64 at a time), and how often
it shares its bins with each of the LAGS frames before it. A window is judged when it is summarized. First, how
many views it holds: a camera dwelling on a scene sends near-copies of one frame, so a window of 120 frames may
hold 12 views (the fewest the statistics' bins show, `edge.eval.fingerprint.views`). Then the population
stability index of each of the four against the fingerprint, as of that many frames, less what chance alone
gives samples of these sizes (`psi_beyond_chance`). The largest of those that also stand out of chance's spread
(Z of its standard deviations: with few views chance alone spreads past the thresholds) sets the level: "ok"
below the watch threshold, "watch" from it, "drift" from the drift threshold, and "too few" while the window has
fewer frames than are needed to tell noise from a shift.

A bundle keeps its fingerprint in edge.json; a bare .tflite file in <name>.fingerprint.json beside it. Either
names the model's sha256, and a fingerprint of another model is refused.
"""

import hashlib
import json
from pathlib import Path

import numpy as np

from edge.bundle import FINGERPRINT_VERSION, MANIFEST, check_fingerprint, read_bundle, update_manifest
from edge.errors import ModelError, OptionError, finite, whole
from edge.eval.fingerprint import (
    LAGS,
    STATISTICS,
    bin_of,
    chance_sd,
    features,
    fingerprint,
    lag_agreement,
    psi_beyond_chance,
    views,
)
from edge.files import check_writable, write_json
from edge.report import DRIFT_STATISTICS

THRESHOLDS = (0.1, 0.25)  # PSI: watch, drift (the usual rule of thumb)
# Fewer frames in a window: "too few". On the digits (benchmarks/drift_bench.py, three trainings) windows of 100
# in-distribution frames reached drift by chance in 0-0.5% of windows and watch in 0.5-16%; of 200, none and 0-7%.
MIN_FRAMES = 200
BATCH = 64  # frames binned together
# Standard deviations of chance a PSI must stand out by to count (PSI's tail is heavier than a normal one's
# at a dozen views): 3.5 * sqrt(8) / 100 is 0.099, so from 100 views on only the thresholds decide.
Z = 3.5
SUFFIX = ".fingerprint.json"
HOW = "make one with 'edge eval MODEL --data VALIDATION_IMAGES --fingerprint'"


def parse_thresholds(value) -> tuple[float, float]:
    """--drift-thresholds as (watch, drift), from "WATCH,DRIFT" or a pair."""
    try:
        watch, drift = (float(part) for part in (value.split(",") if isinstance(value, str) else value))
    except (ValueError, TypeError):
        watch = drift = float("nan")
    if not (finite(watch) and finite(drift) and 0 < watch <= drift):
        raise OptionError(
            f"--drift-thresholds {value}: give two PSI values WATCH,DRIFT with 0 < WATCH <= DRIFT, "
            f"e.g. {THRESHOLDS[0]},{THRESHOLDS[1]}"
        )
    return watch, drift


def check_min_frames(value) -> int:
    if not whole(value, 1):
        raise OptionError(f"--drift-min-frames {value} must be a whole number, at least 1 (default {MIN_FRAMES})")
    return value


class Drift:
    """A fingerprint and the thresholds windows are judged by."""

    def __init__(self, fingerprint: dict, thresholds=THRESHOLDS, min_frames: int = MIN_FRAMES):
        self.thresholds, self.min_frames = parse_thresholds(thresholds), check_min_frames(min_frames)
        self.edges = [np.asarray(fingerprint["histograms"][name]["edges"]) for name in STATISTICS]
        self.expected = [fingerprint["histograms"][name]["counts"] for name in STATISTICS] + [fingerprint["classes"]]

    def counts(self) -> "Counts":
        return Counts(self)

    def judge(self, counts: "Counts") -> dict:
        """A window's drift block (what `edge.report.check_report` holds it to)."""
        got = counts.totals()
        found = [v for v in map(views, got, counts.agreement.T) if v is not None]
        held = min(found) if found else float(min(counts.frames, 1))  # every frame in one bin: one view
        values = {
            name: psi_beyond_chance(expected, window, held)
            for name, expected, window in zip(DRIFT_STATISTICS, self.expected, got, strict=True)
        }
        watch, drift = self.thresholds
        worst = max(
            [
                v
                for v, expected in zip(values.values(), self.expected, strict=True)
                if v >= Z * chance_sd(expected, held)
            ],
            default=0.0,
        )
        level = (
            "too few"
            if counts.frames < self.min_frames
            else "drift"
            if worst >= drift
            else "watch"
            if worst >= watch
            else "ok"
        )
        return {
            "frames": counts.frames,
            "views": round(held, 1),
            "level": level,
            "psi": {k: round(v, 4) for k, v in values.items()},
            "thresholds": [watch, drift],
            "min_frames": self.min_frames,
        }


class Counts:
    """A window's bin counts, one array a statistic, and how many frames share a statistic's bin with the frame
    k = 1..LAGS before (`agreement`, LAGS x statistics). Frames wait in a buffer of BATCH and are binned
    together: a numpy call costs about as much for 64 rows as for one."""

    def __init__(self, drift: Drift):
        self.drift = drift
        self.counts = [np.zeros(len(expected), dtype=np.int64) for expected in drift.expected]
        self.agreement = np.zeros((LAGS, len(drift.expected)), dtype=np.int64)
        # The last frames' bins (-1: none), as int16 (classes up to 32767): a narrower compare is a faster one.
        self.before = np.full((LAGS, len(drift.expected)), -1, dtype=np.int16)
        self.pending = np.empty((BATCH, len(drift.expected[-1])), dtype=np.float32)
        self.held = self.frames = 0

    def add(self, scores) -> None:
        """One frame's own scores."""
        self.pending[self.held] = scores
        self.held += 1
        self.frames += 1
        if self.held == BATCH:
            self._bin()

    def totals(self) -> list[np.ndarray]:
        self._bin()
        return self.counts

    def _bin(self) -> None:
        rows, self.held = self.pending[: self.held], 0
        if not len(rows):
            return
        binned = [bin_of(edges, values) for edges, values in zip(self.drift.edges, features(rows).T, strict=True)]
        bins = np.stack(binned + [rows.argmax(axis=1)], axis=1).astype(np.int16)
        for counts, column in zip(self.counts, bins.T, strict=True):
            counts += np.bincount(column, minlength=len(counts))
        self.agreement += lag_agreement(bins, self.before)
        self.before = np.concatenate([self.before, bins])[-LAGS:]


def fingerprint_file(model: Path) -> Path:
    """Where a bare .tflite file's fingerprint lives: beside it, <name>.fingerprint.json."""
    return model.with_name(model.stem + SUFFIX)


def find(model, classes: int) -> dict | None:
    """The fingerprint of `model` (a bundle folder or a .tflite file of `classes` outputs), checked, or None if
    it has none. A bundle's was held to its shape when the bundle was read; a bare file's is held here."""
    model = Path(model)
    if model.is_dir():
        bundle = read_bundle(model)
        found, where, sha256 = bundle.manifest.get("fingerprint"), model / MANIFEST, bundle.manifest["model"]["sha256"]
    else:
        where = fingerprint_file(model)
        if not where.is_file():
            return None
        try:
            found = json.loads(where.read_text())
        except (OSError, ValueError, UnicodeDecodeError) as e:
            raise ModelError(f"cannot read {where} ({e}): {HOW}") from None
        sha256 = hashlib.sha256(model.read_bytes()).hexdigest()
        check_fingerprint(found, classes, where)
    if found is None:
        return None
    if not isinstance(found, dict) or found.get("format_version") != FINGERPRINT_VERSION:
        version = found.get("format_version") if isinstance(found, dict) else None
        raise ModelError(
            f"the fingerprint in {where} has format_version {version!r}; this edge reads "
            f"{FINGERPRINT_VERSION}: upgrade edge or {HOW}"
        )
    if found.get("model_sha256") != sha256:
        raise ModelError(
            f"the fingerprint in {where} is of another model (sha256 {str(found.get('model_sha256'))[:12]}"
            f", this model's {sha256[:12]}): {HOW}"
        )
    return found


def save(model, labels: list[str], scores) -> Path:
    """Fingerprint `model` from its scores on validation images: into a bundle's edge.json, or beside a bare
    .tflite file. Returns the file written."""
    model = Path(model)
    if model.is_dir():
        bundle = read_bundle(model)
        update_manifest(bundle, {"fingerprint": fingerprint(scores, bundle.labels, bundle.manifest["model"]["sha256"])})
        return model / MANIFEST
    made = fingerprint(scores, labels, hashlib.sha256(model.read_bytes()).hexdigest())
    return write_json(fingerprint_file(model), made)


def check_destination(model) -> Path:
    """Where `save` will write, refused before the evaluation if it cannot be written."""
    model = Path(model)
    return check_writable(model / MANIFEST if model.is_dir() else fingerprint_file(model), "--fingerprint")
