"""Ground truth in the field: what the camera is looking at, for the whole session (`--truth cat`) or
by frame or time ranges from a schedule file (`--truth-schedule walk.json`):

    [{"start_frame": 0, "end_frame": 99, "label": "cat"},      frames 0..99, both ends included
     {"start_s": 4.0, "end_s": 9.5, "label": "dog"}]           seconds 4.0 <= t < 9.5 since the start

Frames outside every range have no truth and are not evaluated. With `--preview`, number keys set the
truth from the moment they are pressed (`KeyedTruth`).
"""

import json
from dataclasses import dataclass
from pathlib import Path

from edge.errors import EdgeError, close_matches


@dataclass(frozen=True)
class Span:
    label: int  # index into the model's labels
    start: float
    end: float
    by_frame: bool

    def covers(self, frame: int, seconds: float) -> bool:
        return self.start <= frame <= self.end if self.by_frame else self.start <= seconds < self.end


@dataclass(frozen=True)
class Truth:
    spans: tuple[Span, ...]

    def at(self, frame: int, seconds: float) -> int | None:
        """The true class index of a frame, or None when the schedule says nothing about it."""
        for span in self.spans:
            if span.covers(frame, seconds):
                return span.label
        return None


@dataclass
class KeyedTruth:
    """Truth set by number keys during a run: from the first key press on it replaces `base`."""

    base: Truth | None
    pressed: bool = False
    current: int | None = None  # None: nothing to evaluate right now

    def set(self, label: int | None) -> None:
        self.pressed, self.current = True, label

    def at(self, frame: int, seconds: float) -> int | None:
        if self.pressed:
            return self.current
        return self.base.at(frame, seconds) if self.base else None


def label_index(label: str, labels: list[str], option: str) -> int:
    if label in labels:
        return labels.index(label)
    close = close_matches(label, labels)
    hint = f"did you mean {' or '.join(close)}?" if close else f"the model's labels are {', '.join(labels[:12])}"
    raise EdgeError(f"{option}: '{label}' is not one of the model's labels: {hint}")


def whole_session(label: str, labels: list[str]) -> Truth:
    return Truth((Span(label_index(label, labels, "--truth"), 0, float("inf"), True),))


def read_schedule(path, labels: list[str]) -> Truth:
    path = Path(path)
    where = f"--truth-schedule {path}"
    try:
        entries = json.loads(path.read_text())
    except OSError as e:
        raise EdgeError(f"{where}: cannot read it ({e.strerror})") from None
    except ValueError as e:
        raise EdgeError(
            f"{where} is not valid JSON ({e}): give a list of "
            '{"start_frame", "end_frame", "label"} or {"start_s", "end_s", "label"}'
        ) from None
    if not isinstance(entries, list) or not entries:
        raise EdgeError(f"{where}: give a non-empty JSON list of ranges")
    spans = []
    for n, entry in enumerate(entries):
        spans.append(_span(entry, labels, f"{where}, entry {n}"))
    for kind in (True, False):
        same = sorted((s for s in spans if s.by_frame == kind), key=lambda s: s.start)
        for a, b in zip(same, same[1:], strict=False):
            if b.start < a.end or (kind and b.start == a.end):
                raise EdgeError(
                    f"{where}: ranges overlap around {'frame' if kind else 'second'} {b.start:g}; "
                    "each frame may have one truth"
                )
    return Truth(tuple(spans))


def _span(entry, labels, where) -> Span:
    if not isinstance(entry, dict) or "label" not in entry:
        raise EdgeError(
            f'{where}: each entry needs a label and a range, e.g. {{"start_frame": 0, "end_frame": 99, "label": "cat"}}'
        )
    if "start_frame" in entry and "end_frame" in entry:
        start, end, by_frame = entry["start_frame"], entry["end_frame"], True
    elif "start_s" in entry and "end_s" in entry:
        start, end, by_frame = entry["start_s"], entry["end_s"], False
    else:
        raise EdgeError(f"{where}: give start_frame and end_frame, or start_s and end_s")
    if (
        not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (start, end))
        or start < 0
        or end < start
        or (by_frame and not (float(start).is_integer() and float(end).is_integer()))
    ):
        raise EdgeError(
            f"{where}: the range {start}..{end} must be numbers with 0 <= start <= end (whole numbers for frames)"
        )
    return Span(label_index(str(entry["label"]), labels, where), float(start), float(end), by_frame)
