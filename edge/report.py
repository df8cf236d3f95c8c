"""Field reports: what a device sends its host, one per time window of `edge run`.

A report is the `edge run --json` summary of the frames in its window, made compact, plus who sent it and
about what: device id, run id, model sha256, the window in Unix time, and a unique id the host stores once
(so a device may resend freely). Compact, because a 1000-class model's dense confusion matrix alone is 2 MB:
the matrix goes as its non-zero cells, flat (truth, predicted, count, truth, predicted, count, ...: quick to
parse and check), and the per-class rows only for the classes seen in the window.
`check_report` is the schema the host holds every report to; it also refuses what the host could not serve
back as it came (integers past 2^53, non-finite numbers, lone surrogates, deep nesting).
"""

import re
import secrets
import time

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
# orjson reads an integer past 64 bits as the nearest double, silently: no number that large is taken, so none
# comes back other than it came
MAX_FLOAT = 2.0**63
MAX_DEPTH = 16  # nesting within a report
MAX_SKIPPED = 20  # unreadable files named in one report (all are counted)
DRIFT_LEVELS = ("ok", "watch", "drift", "too few")  # edge.drift: a window's scores against the model's fingerprint
DRIFT_STATISTICS = ("top1", "margin", "entropy", "classes")


def make_report(
    summary: dict, device_id: str, run_id: str, seq: int, model_sha256: str, start: float, end: float
) -> dict:
    """A compact report from a window's run summary. `start`/`end`: Unix seconds."""
    cm = np.asarray(summary["confusion_matrix"])
    truth, predicted = np.nonzero(cm)
    seen = set(np.nonzero(cm.sum(axis=0) + cm.sum(axis=1))[0].tolist())
    compact = {key: value for key, value in summary.items() if key != "confusion_matrix"}
    compact["confusion"] = np.stack([truth, predicted, cm[truth, predicted]], axis=1).ravel().tolist()
    compact["per_class"] = {label: row for c, (label, row) in enumerate(summary["per_class"].items()) if c in seen}
    skipped = summary.get("skipped")
    if skipped:
        compact["skipped"] = {**skipped, "files": skipped["files"][:MAX_SKIPPED]}
    return {
        "format_version": FORMAT_VERSION,
        "id": new_id(),
        "device_id": device_id,
        "run_id": run_id,
        "seq": seq,
        "model_sha256": model_sha256,
        "window": {"start": start, "end": end},
        **compact,
    }


def new_id() -> str:
    """A report id: 32 hex digits, the first 12 the time in milliseconds, the rest random (as a UUIDv7).
    Ids made later sort later, so the host adds each to the end of its index of ids, not to a random page
    of it: at a million reports, random pages made every insert, and every checkpoint, several times
    dearer."""
    return f"{time.time_ns() // 1_000_000:012x}{secrets.token_hex(10)}"


def matrix(report: dict) -> np.ndarray:
    """A (checked) report's confusion matrix, dense."""
    n = len(report["labels"])
    cm = np.zeros((n, n), dtype=np.int64)
    for truth, predicted, count in cells(report["confusion"]):
        cm[truth, predicted] = count
    return cm


def cells(flat: list):
    """(truth, predicted, count) of each non-zero cell of a confusion matrix kept flat, as reports keep it."""
    return zip(flat[0::3], flat[1::3], flat[2::3], strict=True)


def check_name(value, what: str = "--device-id") -> str:
    """A device's (or reader's) name, the one rule host and device hold names to."""
    if not isinstance(value, str) or not NAME.fullmatch(value):
        raise EdgeError(
            f"{what} '{value}': letters, digits, '.', '_' and '-', up to 64, starting with a letter or "
            "digit, e.g. pi-kitchen"
        )
    return value


def _number(value, lo=-MAX_INT, hi=MAX_INT, null=False) -> bool:
    """A number within [lo, hi]: a comparison, not math.isfinite, which raises on an integer of 400 digits
    (nan and infinities fail the comparison too)."""
    if value is None:
        return null
    return isinstance(value, (int, float)) and not isinstance(value, bool) and lo <= value <= hi


def _count(value, most=MAX_INT) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= most


def _frames(value) -> bool:
    return _count(value, MAX_COUNT)


def _text(pattern):
    return lambda value: isinstance(value, str) and pattern.fullmatch(value) is not None


def _window(value) -> bool:
    return (
        isinstance(value, dict)
        and _number(value.get("start"), 0)
        and _number(value.get("end"), 0)
        and value["start"] <= value["end"]
    )


def _latency(value) -> bool:
    return isinstance(value, dict) and all(
        isinstance(value.get(part), dict) and all(_number(v, 0, null=True) for v in value[part].values())
        for part in ("inference", "frame")
    )


def _cells(value) -> bool:
    if not isinstance(value, list) or len(value) % 3 or not set(map(type, value)) <= {int}:  # type(): not bool
        return False
    classes, counts = value[0::3] + value[1::3], value[2::3]
    return not value or (
        min(classes) >= 0 and max(classes) < MAX_CLASSES and min(counts) > 0 and max(counts) <= MAX_COUNT
    )


def versioned(version: int) -> tuple:
    """The check of a `format_version` field."""
    return (
        lambda v: _count(v) and v == version,
        f"{version} (a device sending another: install the host's edge version on it)",
    )


# Who sent it and about what: a report's fields, and a collected frame's (edge.frame_record)
SENDER = {
    "id": (_text(ID), "8-64 letters, digits, '_' or '-'"),
    "device_id": (_text(NAME), "a device name"),
    "run_id": (_text(ID), "8-64 letters, digits, '_' or '-'"),
    "model_sha256": (_text(SHA256), "64 lower-case hex digits"),
}

# key -> (check, what it must be); every report needs all of these, other keys are kept as sent
REQUIRED = {
    "format_version": versioned(FORMAT_VERSION),
    **SENDER,
    "seq": (_count, "a count"),
    "window": (_window, '{"start": unix seconds, "end": unix seconds >= start}'),
    "frames": (_frames, f"a count up to {MAX_COUNT}"),
    "evaluated": (_frames, f"a count up to {MAX_COUNT}"),
    "dropped": (_frames, f"a count up to {MAX_COUNT}"),
    "fps": (lambda v: _number(v, 0, null=True), "a number >= 0 or null"),
    "latency_ms": (_latency, '{"inference": {...}, "frame": {...}} of numbers'),
    "accuracy": (lambda v: _number(v, 0, 1), "a number from 0 to 1"),
    "labels": (
        lambda v: isinstance(v, list) and 0 < len(v) <= MAX_CLASSES and all(isinstance(x, str) for x in v),
        f"a list of 1-{MAX_CLASSES} class names",
    ),
    "confusion": (_cells, "the non-zero cells, flat: [truth, predicted, count, ...], counts > 0"),
}


def _drift(value) -> bool:
    """edge.drift's block: the window's frames, a level, a PSI a statistic, the thresholds, the fewest frames
    judged."""
    if not isinstance(value, dict):
        return False
    psi, thresholds = value.get("psi"), value.get("thresholds")
    return (
        _frames(value.get("frames"))
        and value.get("level") in DRIFT_LEVELS
        and isinstance(psi, dict)
        and set(psi) == set(DRIFT_STATISTICS)
        and all(_number(v, 0) for v in psi.values())
        and isinstance(thresholds, list)
        and len(thresholds) == 2
        and all(_number(t, 0) for t in thresholds)
        and thresholds[0] <= thresholds[1]
        and _count(value.get("min_frames"), MAX_COUNT)
    )


HEALTH_KEY = re.compile(r"[a-z][a-z0-9_]{0,39}")
HEALTH_WORD = re.compile(r"[a-z][a-z-]{0,39}")


def _health(value) -> bool:
    """edge.health's figures: numbers, or lists of a few words (the firmware's throttled flags); a device
    leaves out what its board does not keep, and a newer device may send figures an older host does not know."""
    return (
        isinstance(value, dict)
        and len(value) <= 32
        and all(
            isinstance(key, str)
            and HEALTH_KEY.fullmatch(key) is not None
            and (
                _number(figure)
                or (
                    isinstance(figure, list)
                    and len(figure) <= 8
                    and all(isinstance(w, str) and HEALTH_WORD.fullmatch(w) for w in figure)
                )
            )
            for key, figure in value.items()
        )
    )


# key -> (check, what it must be) of keys a report may leave out
OPTIONAL = {
    "health": (_health, "{figure: number or [word, ...]}, up to 32 figures (edge.health)"),
    "top1_mean": (lambda v: _number(v, 0, 1, null=True), "a number from 0 to 1 (the mean top-1 score) or null"),
    "model_refused": (
        lambda v: (
            isinstance(v, dict)
            and len(v) <= 16
            and all(
                isinstance(k, str) and len(k) <= 200 and isinstance(w, str) and len(w) <= 1000 for k, w in v.items()
            )
        ),
        "{NAME@VERSION: why}, up to 16 (edge run --follow-models)",
    ),
    "model_version": (
        lambda v: (
            isinstance(v, dict)
            and set(v) == {"model", "version"}
            and isinstance(v["model"], str)
            and NAME.fullmatch(v["model"]) is not None
            and _count(v["version"])
            and v["version"] >= 1
        ),
        '{"model": a model name, "version": a whole number from 1} (edge run --follow-models)',
    ),
    "drift": (
        _drift,
        '{"frames": count, "level": one of '
        + ", ".join(DRIFT_LEVELS)
        + ', "psi": {'
        + ", ".join(f'"{name}": number >= 0' for name in DRIFT_STATISTICS)
        + '}, "thresholds": [watch, drift], "min_frames": count}',
    ),
}


# Required keys whose check above leaves only what JSON serves back as it came: the rest is walked.
SERVABLE = {
    "format_version",
    "id",
    "device_id",
    "run_id",
    "seq",
    "model_sha256",
    "window",
    "frames",
    "evaluated",
    "dropped",
    "fps",
    "accuracy",
    "confusion",
}


def check_fields(value, required: dict, optional: dict, kind: str) -> str | None:
    """What is wrong with the fields of `value`, a `kind` ("report"), by tables of key -> (check, what it must
    be), or None."""
    if not isinstance(value, dict):
        return f"a {kind} must be a JSON object"
    for key, (check, what) in required.items():
        if key not in value:
            return f"missing '{key}'"
        if not check(value[key]):
            return f"'{key}' must be {what}"
    for key, (check, what) in optional.items():
        if key in value and not check(value[key]):
            return f"'{key}' must be {what}"
    return None


def check_report(report) -> str | None:
    """What is wrong with a report, or None."""
    problem = check_fields(report, REQUIRED, OPTIONAL, "report")
    if problem:
        return problem
    problem = unservable({key: value for key, value in report.items() if key not in SERVABLE})
    if problem:
        return problem
    n, flat = len(report["labels"]), report["confusion"]
    if flat and max(flat[0::3] + flat[1::3]) >= n:
        return f"'confusion' cells must name classes 0 to {n - 1}, one per label"
    if len(set(zip(flat[0::3], flat[1::3], strict=True))) * 3 != len(flat):
        return "'confusion' must hold each cell once"
    if sum(flat[2::3]) != report["evaluated"]:
        return "'confusion' must hold as many frames as 'evaluated'"
    return None


def unservable(value) -> str | None:
    """Where `value` holds what could not be served back as JSON exactly as it came, or None: what the host
    stores it must be able to return from every read, to every reader."""
    if _servable(value, 0):
        return None
    where, depth = "", 0
    while True:  # down the first branch that fails, for its path
        if isinstance(value, (dict, list)) and depth >= MAX_DEPTH:
            return f"'{where}' nests deeper than {MAX_DEPTH} levels"
        if isinstance(value, int):
            return f"'{where}' is an integer beyond +-2^53"
        if isinstance(value, float):
            return f"'{where}' is not a finite number below +-2^63"
        if isinstance(value, str):
            return f"'{where}' is not valid Unicode text (a lone surrogate)"
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if isinstance(key, str) and not _unicode(key):
                return f"a key in {repr(where) if where else 'the report'} is not valid Unicode text (a lone surrogate)"
            if not _servable([item], depth):
                where, value, depth = _path(where, key), item, depth + 1
                break


def _servable(value, depth: int) -> bool:
    """The fast check, for a container (a report is a few hundred values, checked at thousands a second)."""
    if depth >= MAX_DEPTH:
        return False
    is_dict = type(value) is dict
    if is_dict and not ("".join(value).isascii() or all(map(_unicode, value))):  # keys: JSON's are text
        return False
    if not is_dict and value and set(map(type, value)) == {int}:  # a confusion matrix's cells: in one go
        return -MAX_INT <= min(value) and max(value) <= MAX_INT
    for item in value.values() if is_dict else value:
        kind = type(item)
        if kind is float:
            if not abs(item) < MAX_FLOAT:  # NaN too
                return False
        elif kind is int:
            if not -MAX_INT <= item <= MAX_INT:
                return False
        elif kind is str:
            if not (item.isascii() or _unicode(item)):
                return False
        elif kind is dict or kind is list:
            if not _servable(item, depth + 1):
                return False
    return True


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
