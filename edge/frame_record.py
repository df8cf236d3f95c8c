"""Collected frames: the record a device sends home with each frame `edge run --collect` keeps, and the
check the host holds it to.

A record is the frame as JPEG (base64, at the resolution the source delivered) with what the model made
of it: the call, its top-k and every class's score, the model's labels (so the host knows which labels
are new classes), the truth if any, why it was kept, when, and from where (the source as `redact` shows
it). Like a report it has an id the host stores once, so a device may resend freely.
"""

import base64
import binascii
import hashlib
import string
import unicodedata

from edge.report import MAX_CLASSES, SENDER, _count, _number, check_fields, unservable, versioned

# A data folder's sub-folder of images of no class (edge convert --teacher labels them): the export's frames no one
# labelled go there, and no label's frames do.
UNLABELLED = "_unlabelled"

FORMAT_VERSION = 1
REASONS = ("uncertain", "wrong", "disagree", "every")  # edge.collect's rules
MAX_JPEG = 8 << 20  # bytes of one frame's JPEG
MAX_SIDE = 8192  # pixels: a frame larger than any camera's is refused before it is decoded
MAX_TEXT = 1000  # characters of the source and of a label
# A label a person gives names a folder of the exported data set, as it is, on Linux, macOS and Windows alike.
MAX_LABEL = 100  # characters of a label, and of a folder the export names
MAX_NAME = 255  # bytes of a name in UTF-8 (Linux, macOS; Windows counts UTF-16 units, never more)
# separators, what Windows forbids in a name, and the export's escape character (so no label is an escape)
_FORBIDDEN = set('/\\:*?"<>|%')
_HIDDEN = {"Cc", "Cf", "Cs", "Co", "Zl", "Zp"}  # controls (C0, DEL, C1), bidi overrides and other invisibles
_JOINERS = {"\u200c", "\u200d"}  # invisible, but Persian, Indic scripts and emoji need them
_DEVICES = {
    "CON",
    "PRN",
    "AUX",
    "NUL",
    "CONIN$",
    "CONOUT$",
    *(f"{port}{n}" for port in ("COM", "LPT") for n in "0123456789¹²³"),
}  # Windows, any case
_PLAIN = set(string.ascii_letters + string.digits + " -_.,;+=()[]{}!@#$&'~^`")  # kept as they are by the export


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
        if marker in (0x00, 0x01) or 0xD0 <= marker <= 0xD8:  # no length: read as one, it hides what follows
            return None
        length = int.from_bytes(data[at + 2 : at + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # a start of frame: SOF0-SOF15
            if at + 9 > len(data):
                return None
            return int.from_bytes(data[at + 7 : at + 9], "big"), int.from_bytes(data[at + 5 : at + 7], "big")
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
    return isinstance(value, list) and 0 < len(value) <= MAX_CLASSES and all(_number(v, 0, 1) for v in value)


def _top_k(value) -> bool:
    return (
        isinstance(value, list)
        and 0 < len(value) <= MAX_CLASSES
        and all(
            isinstance(pair, list) and len(pair) == 2 and _label(pair[0]) and _number(pair[1], 0, 1) for pair in value
        )
    )


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
    "labels": (
        lambda v: isinstance(v, list) and 0 < len(v) <= MAX_CLASSES and all(_label(x) for x in v),
        f"a list of 1-{MAX_CLASSES} class names",
    ),
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


def check_label(value, classes=()) -> str | None:
    """What is wrong with a label a person gives a frame, or None. A label names a folder of the exported
    data set as it is, on Linux, macOS and Windows alike: at most MAX_LABEL characters and MAX_NAME bytes,
    in Unicode's composed form (so no two labels are one folder on macOS), without separators, what Windows
    forbids, '%', controls or invisible formatting, a '.' or space at either end, or a Windows device name.
    A label the model does not know is allowed: it starts a new class. One of the model's own `classes`
    (the frame's "labels") is allowed whatever it holds (a bare .tflite's class may be "a/b"): the export
    writes it into `folder_name`'s folder; one holding a NUL is held to a person's rules (a database's text
    holds none)."""
    if isinstance(value, str) and value in classes and "\x00" not in value:
        return None
    problem = _name_problem(value) if isinstance(value, str) else "it is not text"
    return problem and f"a label names a folder of the exported data set on Linux, macOS and Windows alike: {problem}"


def _name_problem(name: str) -> str | None:
    if not 0 < len(name) <= MAX_LABEL:
        return f"it is {len(name)} characters; give 1-{MAX_LABEL}"
    bad = next((c for c in name if c in _FORBIDDEN or (unicodedata.category(c) in _HIDDEN and c not in _JOINERS)), None)
    if bad:
        return f'it holds U+{ord(bad):04X}; give no / \\ : * ? " < > | %, control or invisible formatting characters'
    size = max(len(name.encode()), len(unicodedata.normalize("NFD", name).encode()))  # macOS may store either
    if size > MAX_NAME:
        return f"it is {size} bytes as UTF-8; give at most {MAX_NAME}"
    if name[0] in ". " or name[-1] in ". ":
        return "it starts or ends with '.' or a space (hidden, or dropped by Windows)"
    if _device(name):
        return f"'{name}' is a name Windows keeps for a device"
    if unicodedata.normalize("NFC", name) != name:
        return "give it in Unicode's composed form (NFC), as keyboards type it"
    return None


def _device(name: str) -> bool:
    """Whether Windows takes `name` for a device (CON, or con.txt: the part before a dot, spaces dropped)."""
    return name.split(".")[0].rstrip(" ").upper() in _DEVICES


def folder_name(label: str) -> str:
    """The folder the export writes `label`'s frames into: the label itself if `check_label` takes it as a
    person's, else (a model's own class such as "a/b", or a label an older host took) the label
    percent-encoded as in a URL, ASCII only: every character but letters, digits, space and
    -_.,;+=()[]{}!@#$&'~^` as its UTF-8 bytes (%2F), and so the first character of a Windows device name
    and a '.' or space at either end, and the '_' of a label named as the folder of frames of no label (in any case)
    (UNLABELLED); `urllib.parse.unquote` gives the label back. One that would be longer
    than MAX_LABEL is cut, and ends in '%%' and 16 hex digits of the label's SHA-256 (an escape never holds
    '%%'). A label never holds '%', so no label's folder is another's."""
    reserved = label.casefold() == UNLABELLED  # the frames of no label's folder (one folder on macOS and Windows)
    if check_label(label) is None and not reserved:
        return label
    pieces = [c if c in _PLAIN else _escape(c) for c in label]
    if pieces[0] in ". " or _device(label) or reserved:
        pieces[0] = _escape(label[0])
    if pieces[-1] in ". ":
        pieces[-1] = _escape(label[-1])
    name = "".join(pieces)
    if len(name) > MAX_LABEL:
        kept, room = [], MAX_LABEL - 18
        for piece in pieces:  # whole characters
            room -= len(piece)
            if room < 0:
                break
            kept.append(piece)
        name = "".join(kept) + "%%" + hashlib.sha256(label.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return name


def _escape(character: str) -> str:
    return "".join(f"%{byte:02X}" for byte in character.encode("utf-8", "surrogatepass"))
