"""Whether the host can take a collected frame's JPEG: what it keeps, a browser must be able to show, and
checking it must cost no more than a camera's frame does.

A JPEG's segments are read in order first, without decoding (a regular expression finds where each scan's
coded data ends), and a frame is refused unread when:
- 413: its frame header declares more than MAX_PIXELS. Progressive decoding holds every coefficient of the
  image, 2 bytes a sample: 200-400 MB for an 8192x8192 frame, for each POST in flight; at MAX_PIXELS and at
  most 3 components, at most 96 MiB.
- 422: it has more than MAX_SCANS scans (each costs a pass over the whole image: 1,000 repeats of one took
  7 s at 4096x4096), or more than MAX_SEGMENTS segments; it is arithmetic-coded, lossless, hierarchical or of
  12-bit samples (browsers show none of these), or has other than 1 or 3 colour components; a marker is out
  of place (a restart marker before the frame header hid a 20000x20000 header behind a 64x64 one from
  edge.frame_record.jpeg_size), or a second frame header follows; or it ends before its end-of-image
  marker, or does not decode.
Only then is it decoded, at 1/8 of its size in grey, as before, and one decode at a time in a process: a
worker's threads wait their turn, so its memory holds one decode, not one for each POST in flight.
"""

import re
import threading

import cv2
import numpy as np

from edge.frame_record import jpeg_bytes

# The largest frame a device sends, with room: Camera Module 3 is 4608x2592 (11.9 MP), the HQ camera
# 4056x3040 (12.3 MP), a 4K UHD webcam or video 3840x2160 (8.3 MP).
MAX_PIXELS = 4096 * 4096
MAX_SCANS = 32  # libjpeg's progressive JPEGs have 10 scans in colour and 6 in grey, a camera's MJPG 1
MAX_SEGMENTS = 1000  # a camera's JPEG has about 10, a photo with Exif, an ICC profile and XMP a few dozen

SOI, EOI, SOS = 0xD8, 0xD9, 0xDA
TAKEN = (0xC0, 0xC1, 0xC2)  # baseline, extended sequential, progressive: Huffman-coded
CODINGS = {
    0xC3: "lossless",
    0xC5: "hierarchical",
    0xC6: "hierarchical",
    0xC7: "hierarchical",
    0xC9: "arithmetic-coded",
    0xCA: "arithmetic-coded",
    0xCB: "arithmetic-coded",
    0xCD: "hierarchical",
    0xCE: "hierarchical",
    0xCF: "hierarchical",
}  # the other frame headers: SOF3 and SOF5-SOF15
# No length: TEM, SOI, RST0-7 (in place only within a scan), and FF00, a stuffed zero the decoder skips
STANDALONE = {0x00, 0x01, SOI, *range(0xD0, 0xD8)}
MARKER = re.compile(rb"\xff+([^\xff])", re.DOTALL)  # a marker, after any fill bytes (FF), however many
# The end of a scan's coded data: a marker, which is neither a stuffed zero, a restart nor a fill byte.
SCAN_END = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
BROKEN = "'jpeg' does not decode as a JPEG image"
OUT_OF_PLACE = "the host reads a JPEG's segments in order and refuses one it cannot place"
TAKES = "the host takes baseline and progressive JPEGs, 8 bits, Huffman-coded: what every browser shows"

_decoding = threading.Lock()


def refusal(frames: list[dict]) -> tuple[int, str] | None:
    """The status and reason a POST of `frames` (checked records) is refused for, or None."""
    for n, frame in enumerate(frames):
        data = jpeg_bytes(frame)
        refused = _segments(data) or _decodes(data)
        if refused:
            return refused[0], f"frame {n}: {refused[1]}"
    return None


def _segments(data: bytes) -> tuple[int, str] | None:
    """Why the JPEG's segments are refused, or None: they are read in order as the decoder reads them, so the
    frame header checked is the one it decodes."""
    if data[:2] != b"\xff\xd8":
        return 422, BROKEN
    at, frame, scans, segments = 2, False, 0, 0
    while True:
        found = MARKER.match(data, at)
        if not found:
            return 422, BROKEN  # cut short, or bytes where a marker belongs
        at, marker = found.start(1) - 1, data[found.start(1)]
        if marker == EOI:
            return None if scans else (422, BROKEN)
        if marker in STANDALONE:
            return 422, f"the JPEG has marker FF{marker:02X} out of place at byte {at}: {OUT_OF_PLACE}"
        segments += 1
        if segments > MAX_SEGMENTS:
            return 422, f"the JPEG has more than {MAX_SEGMENTS} segments (a camera writes about 10): refused unread"
        end = at + 2 + int.from_bytes(data[at + 2 : at + 4], "big")
        if end > len(data) or end < at + 4:
            return 422, BROKEN
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # a frame header: SOF0-SOF15
            if frame:
                return 422, f"the JPEG has a second frame header at byte {at}: {OUT_OF_PLACE}"
            frame = True
            refused = _frame(marker, data[at + 4 : end])
            if refused:
                return refused
        elif marker == SOS:
            if not frame:
                return 422, f"the JPEG has a scan before its frame header at byte {at}: {OUT_OF_PLACE}"
            scans += 1
            if scans > MAX_SCANS:
                return 422, f"the JPEG has more than {MAX_SCANS} scans (an encoder writes about 10): refused unread"
            coded_end = SCAN_END.search(data, end)
            if not coded_end:
                return 422, BROKEN
            end = coded_end.start()
        at = end


def _frame(marker: int, header: bytes) -> tuple[int, str] | None:
    """Why a frame header (after its length: precision, height, width, components) is refused, or None."""
    if len(header) < 6:
        return 422, BROKEN
    if marker not in TAKEN:
        return 422, f"the JPEG is {CODINGS[marker]} (SOF{marker - 0xC0}): {TAKES}"
    if header[0] != 8:
        return 422, f"the JPEG has {header[0]}-bit samples: {TAKES}"
    height, width, components = int.from_bytes(header[1:3], "big"), int.from_bytes(header[3:5], "big"), header[5]
    if components not in (1, 3):
        return 422, f"the JPEG has {components} colour components: the host takes 1 (grey) or 3 (colour)"
    if width * height > MAX_PIXELS:
        return 413, (
            f"the JPEG is {width}x{height}, {width * height / 1e6:.1f} MP: the host takes at most "
            f"{MAX_PIXELS / 1e6:.1f} MP (4096x4096) a frame"
        )
    return None


def _decodes(data: bytes) -> tuple[int, str] | None:
    """Decoded at 1/8 of its size, in grey: the whole stream is read, and a JPEG of one scan takes a 64th of
    the memory (one of several scans, progressive ones, still holds every coefficient: one decode at a time)."""
    with _decoding:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_REDUCED_GRAYSCALE_8)
    return (422, BROKEN) if image is None else None
