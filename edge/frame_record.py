"""Collected frames: the record a device sends home with each frame `edge run --collect` keeps, and the
check the host holds it to.

A record is the frame as JPEG (base64, at the resolution the source delivered) with what the model made
of it: the call, its top-k and every class's score, the model's labels (so the host knows which labels
are new classes), the truth if any, why it was kept, when, and from where (the source as `redact` shows
it). Like a report it has an id the host stores once, so a device may resend freely.
"""
import base64
import binascii
import re

from edge.report import MAX_CLASSES, SENDER, _count, _number, check_fields, unservable, versioned

FORMAT_VERSION = 1
REASONS = ("uncertain", "wrong", "disagree", "every")  # edge.collect's rules
MAX_JPEG = 8 << 20  # bytes of one frame's JPEG
MAX_SIDE = 8192  # pixels: a frame larger than any camera's is refused before it is decoded
MAX_TEXT = 1000  # characters of the source and of a label
# A label a person gives names a folder of the exported data set: no separators, control characters,
# characters Windows forbids in names, or leading dot or space, on any file system.
_BAD = r'/\\:*?"<>|\x00-\x1f\x7f'
GIVEN = re.compile(f"[^. {_BAD}][^{_BAD}]{{0,99}}")


def make_record(jpeg: bytes, meta: dict) -> dict:
    """A record: `meta` (every key of REQUIRED but the format and the image) with the JPEG's bytes."""
    return {"format_version": FORMAT_VERSION, **meta, "jpeg": base64.b64encode(jpeg).decode("ascii")}


def jpeg_bytes(record: dict) -> bytes:
    """The JPEG of a checked record."""
    return base64.b64decode(record["jpeg"])


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG's frame header, without decoding it; None if it has none."""
    if data[:2] != b"\xff\xd8":
        return None
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        length = int.from_bytes(data[at + 2:at + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # a start of frame: SOF0-SOF15
            if at + 9 > len(data):
                return None
            return int.from_bytes(data[at + 7:at + 9], "big"), int.from_bytes(data[at + 5:at + 7], "big")
        at += 2 + length
    return None


def _jpeg(value) -> bool:
    if not isinstance(value, str) or len(value) > (MAX_JPEG + 2) // 3 * 4:
        return False
    try:
        size = jpeg_size(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError):
        return False
    return size is not None and 0 < size[0] <= MAX_SIDE and 0 < size[1] <= MAX_SIDE


def _label(value) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_TEXT


def _scores(value) -> bool:
    return (isinstance(value, list) and 0 < len(value) <= MAX_CLASSES
            and all(_number(v, 0, 1) for v in value))


def _top_k(value) -> bool:
    return (isinstance(value, list) and 0 < len(value) <= MAX_CLASSES
            and all(isinstance(pair, list) and len(pair) == 2 and _label(pair[0]) and _number(pair[1], 0, 1)
                    for pair in value))


REQUIRED = {
    "format_version": versioned(FORMAT_VERSION),
    **SENDER,
    "time": (lambda v: _number(v, 0), "unix seconds"),
    "frame": (_count, "the frame's index in the run"),
    "source": (lambda v: isinstance(v, str) and len(v) <= MAX_TEXT, f"text up to {MAX_TEXT} characters"),
    "reason": (lambda v: v in REASONS, "one of " + ", ".join(REASONS)),
    "label": (_label, "the model's call"),
    "top_k": (_top_k, "[[label, score 0-1], ...]"),
    "scores": (_scores, f"1-{MAX_CLASSES} scores from 0 to 1, one a class"),
    "labels": (lambda v: isinstance(v, list) and 0 < len(v) <= MAX_CLASSES and all(_label(x) for x in v),
               f"a list of 1-{MAX_CLASSES} class names"),
    "truth": (lambda v: v is None or _label(v), "a label or null"),
    "jpeg": (_jpeg, f"a JPEG of at most {MAX_JPEG >> 20} MB and {MAX_SIDE} pixels a side, in base64"),
}


def check_record(record) -> str | None:
    """What is wrong with a frame record, or None. The JPEG's header is read here; that it decodes is the
    host's to check (it has OpenCV)."""
    problem = check_fields(record, REQUIRED, {}, "frame")
    if problem:
        return problem
    if len(record["scores"]) != len(record["labels"]):
        return "'scores' must hold one score a label"
    return unservable({key: value for key, value in record.items() if key != "jpeg"})


def check_label(value) -> str | None:
    """What is wrong with a label a person gives a frame, or None. A label the model does not know is
    allowed: it starts a new class."""
    if not isinstance(value, str) or not GIVEN.fullmatch(value) or value != value.strip():
        return ('a label is 1-100 characters without / \\ : * ? " < > | or control characters, not starting with '
                "'.' or a space nor ending with a space: it names a folder of the exported data set")
    return None
