"""Field reports: what a device sends its host, one per time window of `edge run`.

A report is the `edge run --json` summary of the frames in its window, made compact, plus who sent it and
about what: device id, run id, model sha256, the window in Unix time, and a unique id the host stores once
(so a device may resend freely). Compact, because a 1000-class model's dense confusion matrix alone is 2 MB:
the matrix goes as its non-zero cells and the per-class rows only for the classes seen in the window.
`check_report` is the schema the host holds every report to; it also refuses what the host could not serve
back as it came (integers past 2^53, non-finite numbers, lone surrogates, deep nesting).
"""
import math
import re
import uuid

import numpy as np

from edge.errors import EdgeError

FORMAT_VERSION = 2  # 1: the dense confusion matrix and every class's row
ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # device and reader names: safe in URLs, file names, logs
SHA256 = re.compile(r"[0-9a-f]{64}")
MAX_CLASSES = 1000
# Frames a report may count: far beyond any camera's window, and far enough below 2^63 that the host's sums over
# billions of reports cannot overflow.
MAX_COUNT = 10**9
MAX_INT = 2**53  # what a double (and so JavaScript, and most JSON readers) holds exactly
MAX_DEPTH = 16  # nesting within a report
MAX_SKIPPED = 20  # unreadable files named in one report (all are counted)


def make_report(summary: dict, device_id: str, run_id: str, seq: int, model_sha256: str, start: float,
                end: float) -> dict:
    """A compact report from a window's run summary. `start`/`end`: Unix seconds."""
    cm = np.asarray(summary["confusion_matrix"])
    truth, predicted = np.nonzero(cm)
    seen = set(np.nonzero(cm.sum(axis=0) + cm.sum(axis=1))[0].tolist())
    compact = {key: value for key, value in summary.items() if key != "confusion_matrix"}
    compact["confusion"] = [[int(t), int(p), int(cm[t, p])] for t, p in zip(truth, predicted)]
    compact["per_class"] = {label: row for c, (label, row) in enumerate(summary["per_class"].items()) if c in seen}
    skipped = summary.get("skipped")
    if skipped:
        compact["skipped"] = {**skipped, "files": skipped["files"][:MAX_SKIPPED]}
    return {"format_version": FORMAT_VERSION, "id": uuid.uuid4().hex, "device_id": device_id, "run_id": run_id,
            "seq": seq, "model_sha256": model_sha256, "window": {"start": start, "end": end}, **compact}


def matrix(report: dict) -> np.ndarray:
    """A (checked) report's confusion matrix, dense."""
    n = len(report["labels"])
    cm = np.zeros((n, n), dtype=np.int64)
    for truth, predicted, count in report["confusion"]:
        cm[truth, predicted] = count
    return cm


def check_name(value, what: str = "--device-id") -> str:
    """A device's (or reader's) name, the one rule host and device hold names to."""
    if not isinstance(value, str) or not NAME.fullmatch(value):
        raise EdgeError(f"{what} '{value}': letters, digits, '.', '_' and '-', up to 64, starting with a letter or "
                        "digit, e.g. pi-kitchen")
    return value


def _number(value, lo=-math.inf, hi=math.inf, null=False) -> bool:
    if value is None:
        return null
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and lo <= value <= hi


def _count(value, most=MAX_INT) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= most


def _frames(value) -> bool:
    return _count(value, MAX_COUNT)


def _text(pattern):
    return lambda value: isinstance(value, str) and pattern.fullmatch(value) is not None


def _window(value) -> bool:
    return (isinstance(value, dict) and _number(value.get("start"), 0) and _number(value.get("end"), 0)
            and value["start"] <= value["end"])


def _latency(value) -> bool:
    return isinstance(value, dict) and all(
        isinstance(value.get(part), dict) and all(_number(v, 0, null=True) for v in value[part].values())
        for part in ("inference", "frame"))


def _cells(value) -> bool:
    return isinstance(value, list) and all(
        isinstance(cell, list) and len(cell) == 3 and _count(cell[0], MAX_CLASSES) and _count(cell[1], MAX_CLASSES)
        and _frames(cell[2]) and cell[2] > 0 for cell in value)


# key -> (check, what it must be); every report needs all of these, other keys are kept as sent
REQUIRED = {
    "format_version": (lambda v: _count(v) and v == FORMAT_VERSION,
                       f"{FORMAT_VERSION} (a device sending another: install the host's edge version on it)"),
    "id": (_text(ID), "8-64 letters, digits, '_' or '-'"),
    "device_id": (_text(NAME), "a device name"),
    "run_id": (_text(ID), "8-64 letters, digits, '_' or '-'"),
    "seq": (_count, "a count"),
    "model_sha256": (_text(SHA256), "64 lower-case hex digits"),
    "window": (_window, '{"start": unix seconds, "end": unix seconds >= start}'),
    "frames": (_frames, f"a count up to {MAX_COUNT}"),
    "evaluated": (_frames, f"a count up to {MAX_COUNT}"),
    "dropped": (_frames, f"a count up to {MAX_COUNT}"),
    "fps": (lambda v: _number(v, 0, null=True), "a number >= 0 or null"),
    "latency_ms": (_latency, '{"inference": {...}, "frame": {...}} of numbers'),
    "accuracy": (lambda v: _number(v, 0, 1), "a number from 0 to 1"),
    "labels": (lambda v: isinstance(v, list) and 0 < len(v) <= MAX_CLASSES and all(isinstance(x, str) for x in v),
               f"a list of 1-{MAX_CLASSES} class names"),
    "confusion": (_cells, "a list of [truth, predicted, count] cells, count > 0"),
}


def check_report(report) -> str | None:
    """What is wrong with a report, or None."""
    if not isinstance(report, dict):
        return "a report must be a JSON object"
    problem = unservable(report)
    if problem:
        return problem
    for key, (check, what) in REQUIRED.items():
        if key not in report:
            return f"missing '{key}'"
        if not check(report[key]):
            return f"'{key}' must be {what}"
    n, cells = len(report["labels"]), report["confusion"]
    if any(t >= n or p >= n for t, p, _ in cells):
        return f"'confusion' cells must name classes 0 to {n - 1}, one per label"
    if len({(t, p) for t, p, _ in cells}) != len(cells):
        return "'confusion' must hold each cell once"
    if sum(count for _, _, count in cells) != report["evaluated"]:
        return "'confusion' must hold as many frames as 'evaluated'"
    return None


def unservable(value, where: str = "", depth: int = 0) -> str | None:
    """Where `value` holds what could not be served back as JSON exactly as it came, or None: what the host
    stores it must be able to return from every read, to every reader."""
    if depth > MAX_DEPTH:
        return f"'{where}' nests deeper than {MAX_DEPTH} levels"
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return None if -MAX_INT <= value <= MAX_INT else f"'{where}' is an integer beyond +-2^53"
    if isinstance(value, float):
        return None if math.isfinite(value) else f"'{where}' is not a finite number"
    if isinstance(value, str):
        return None if _unicode(value) else f"'{where}' is not valid Unicode text (a lone surrogate)"
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        if isinstance(key, str) and not _unicode(key):
            return f"a key in {repr(where) if where else 'the report'} is not valid Unicode text (a lone surrogate)"
        problem = unservable(item, _path(where, key), depth + 1)
        if problem:
            return problem
    return None


def _unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def _path(where: str, key) -> str:
    """A field's path for an error message, short (keys come from the sender)."""
    step = f"[{key}]" if isinstance(key, int) else (f".{key[:40]}" if where else key[:40])
    return (where + step)[-120:]
