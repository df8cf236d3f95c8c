"""Field reports: what a device sends its host, one per time window of `edge run`.

A report is the `edge run --json` summary of the frames in its window, plus who sent it and about what:
device id, run id, model sha256, the window in Unix time, and a unique id the host stores once (so a
device may resend freely). `check_report` is the schema the host holds every report to.
"""
import math
import re
import uuid

from edge.errors import EdgeError

FORMAT_VERSION = 1
ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # device and reader names: safe in URLs, file names, logs
SHA256 = re.compile(r"[0-9a-f]{64}")
MAX_CLASSES = 1000


def make_report(summary: dict, device_id: str, run_id: str, seq: int, model_sha256: str, start: float,
                end: float) -> dict:
    """A report from a window's run summary. `start`/`end`: Unix seconds."""
    return {"format_version": FORMAT_VERSION, "id": uuid.uuid4().hex, "device_id": device_id, "run_id": run_id,
            "seq": seq, "model_sha256": model_sha256, "window": {"start": start, "end": end}, **summary}


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


def _count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**53


def _text(pattern):
    return lambda value: isinstance(value, str) and pattern.fullmatch(value) is not None


def _window(value) -> bool:
    return (isinstance(value, dict) and _number(value.get("start"), 0) and _number(value.get("end"), 0)
            and value["start"] <= value["end"])


def _latency(value) -> bool:
    return isinstance(value, dict) and all(
        isinstance(value.get(part), dict) and all(_number(v, 0, null=True) for v in value[part].values())
        for part in ("inference", "frame"))


# key -> (check, what it must be); every report needs all of these, other keys are kept as sent
REQUIRED = {
    "format_version": (lambda v: _count(v) and v == FORMAT_VERSION, f"{FORMAT_VERSION}"),
    "id": (_text(ID), "8-64 letters, digits, '_' or '-'"),
    "device_id": (_text(NAME), "a device name"),
    "run_id": (_text(ID), "8-64 letters, digits, '_' or '-'"),
    "seq": (_count, "a count"),
    "model_sha256": (_text(SHA256), "64 lower-case hex digits"),
    "window": (_window, '{"start": unix seconds, "end": unix seconds >= start}'),
    "frames": (_count, "a count"),
    "evaluated": (_count, "a count"),
    "dropped": (_count, "a count"),
    "fps": (lambda v: _number(v, 0, null=True), "a number >= 0 or null"),
    "latency_ms": (_latency, '{"inference": {...}, "frame": {...}} of numbers'),
    "accuracy": (lambda v: _number(v, 0, 1), "a number from 0 to 1"),
    "labels": (lambda v: isinstance(v, list) and 0 < len(v) <= MAX_CLASSES and all(isinstance(x, str) for x in v),
               f"a list of 1-{MAX_CLASSES} class names"),
    "confusion_matrix": (lambda v: isinstance(v, list) and all(isinstance(row, list) and all(_count(x) for x in row)
                                                                for row in v), "a square list of lists of counts"),
}


def check_report(report) -> str | None:
    """What is wrong with a report, or None."""
    if not isinstance(report, dict):
        return "a report must be a JSON object"
    for key, (check, what) in REQUIRED.items():
        if key not in report:
            return f"missing '{key}'"
        if not check(report[key]):
            return f"'{key}' must be {what}"
    n = len(report["labels"])
    if len(report["confusion_matrix"]) != n or any(len(row) != n for row in report["confusion_matrix"]):
        return f"'confusion_matrix' must be {n}x{n}, one row and column per label"
    if sum(map(sum, report["confusion_matrix"])) != report["evaluated"]:
        return "'confusion_matrix' must hold as many frames as 'evaluated'"
    return None
