"""The host's check of a collected frame's JPEG (edge.server.frame_check): what devices send passes; a JPEG
that would cost more than a camera's frame (too many pixels, scans or segments), one whose frame header hides
behind a misplaced marker, and codings a browser may not show are refused before any decode, with the limit
named. The JPEGs are real: scikit-learn's scanned digits, encoded by OpenCV, then edited byte by byte."""

import re

import cv2
import pytest

from edge.capture import open_video, parse_source
from edge.collect import to_jpeg
from edge.frame_record import check_record, jpeg_size, make_record
from edge.preprocess import delivered_as
from edge.server.frame_check import MAX_PIXELS, MAX_SCANS, MAX_SEGMENTS, refusal
from tests.jpegs import encoded, picture, repeated_scan

BROKEN = (422, "frame 0: 'jpeg' does not decode as a JPEG image")


def record(jpeg: bytes) -> dict:
    return make_record(
        jpeg,
        {
            "id": "f" * 32,
            "device_id": "pi-door",
            "run_id": "a" * 32,
            "model_sha256": "b" * 64,
            "time": 1.8e9,
            "frame": 7,
            "source": "0",
            "reason": "uncertain",
            "label": "2",
            "top_k": [["2", 0.6]],
            "scores": [0.4, 0.6],
            "labels": ["1", "2"],
            "truth": None,
        },
    )


def frame_header(jpeg: bytes) -> tuple[int, int]:
    """Where a baseline or progressive JPEG's frame header starts, and where it ends."""
    found = re.search(rb"\xff[\xc0\xc2]", jpeg)
    assert found, "a JPEG without a frame header"
    at = found.start()
    return at, at + 2 + int.from_bytes(jpeg[at + 2 : at + 4], "big")


def with_size(jpeg: bytes, width: int, height: int) -> bytes:
    at, _ = frame_header(jpeg)
    return jpeg[: at + 5] + height.to_bytes(2, "big") + width.to_bytes(2, "big") + jpeg[at + 9 :]


@pytest.fixture(scope="module")
def small():
    return encoded(64, 64)


@pytest.fixture(scope="module")
def mjpg_packet(tmp_path_factory):
    """A 640x480 frame of an MJPG video as `edge run --collect` keeps it: the packet, byte for byte."""
    path = tmp_path_factory.mktemp("mjpg") / "walk.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 30, (640, 480))
    writer.write(picture(640, 480))
    writer.release()
    capture = open_video(parse_source(str(path)), undecoded=True)
    ok, frame = capture.read()
    capture.release()
    assert ok and delivered_as(frame) == "jpeg"
    return to_jpeg(frame)


@pytest.mark.parametrize(
    "width, height, progressive", [(640, 480, False), (1920, 1080, False), (640, 480, True), (4096, 4096, True)]
)
def test_what_devices_send_passes(width, height, progressive):
    jpeg = to_jpeg(picture(width, height)) if not progressive else encoded(width, height, True)
    assert check_record(record(jpeg)) is None
    assert refusal([record(jpeg)]) is None


def test_a_camera_mjpg_frame_and_a_grey_one_pass(mjpg_packet):
    grey = cv2.imencode(".jpg", picture(320, 240)[:, :, 0])[1].tobytes()
    assert refusal([record(mjpg_packet), record(grey)]) is None


def test_a_scan_repeated_is_refused_unread():
    """The issue's 758 KB JPEG: a progressive frame's shortest scan 1000 times over (OpenCV writes 10)."""
    jpeg = encoded(640, 480, progressive=True)
    hostile = repeated_scan(jpeg, 1000)
    assert check_record(record(hostile)) is None
    assert refusal([record(jpeg), record(hostile)]) == (
        422,
        f"frame 1: the JPEG has more than {MAX_SCANS} scans (an encoder writes about 10): refused unread",
    )


@pytest.mark.parametrize("width, height, progressive", [(8192, 8192, True), (8192, 8192, False), (4097, 4096, True)])
def test_a_frame_larger_than_a_camera_sends_is_refused_before_decoding(width, height, progressive):
    """The issue's 8192x8192 progressive frames took 1.7 GB a worker to decode: the header says so first."""
    hostile = with_size(encoded(64, 64, progressive), width, height)
    assert check_record(record(hostile)) is None  # within the record's 8192 a side
    status, message = refusal([record(hostile)])
    assert status == 413
    assert message == (
        f"frame 0: the JPEG is {width}x{height}, {width * height / 1e6:.1f} MP: the host takes at "
        f"most {MAX_PIXELS / 1e6:.1f} MP (4096x4096) a frame"
    )


def test_a_frame_header_hidden_from_the_record_check_is_refused(small):
    """A restart marker before the frame header: a reader that takes its next bytes for a length (as
    edge.frame_record.jpeg_size did) lands on a 64x64 header inside a comment, while the decoder reads the
    real one, 20000x20000, past the record's 8192 a side. Both checks refuse it now."""
    at, end = frame_header(small)
    real = with_size(small[at:end], 20000, 20000)
    head = b"\xff\xd8\xff\xd0" + real
    landing = 4 + int.from_bytes(real[:2], "big")  # after FFD0, its "length" is the next marker: FFC0
    comment = bytes(landing - len(head) - 4) + small[at:end]
    comment += bytes(0xFFFD - len(comment))
    hostile = head + b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment + small[2:at] + small[end:]
    assert jpeg_size(hostile) is None and check_record(record(hostile)) is not None  # the record check, too
    assert refusal([record(hostile)]) == (
        422,
        (
            "frame 0: the JPEG has marker FFD0 out of place at byte 2: the host "
            "reads a JPEG's segments in order and refuses one it cannot place"
        ),
    )


def _sof(small: bytes, marker: int, precision: int = 8) -> bytes:
    at, _ = frame_header(small)
    return small[: at + 1] + bytes([marker]) + small[at + 2 : at + 4] + bytes([precision]) + small[at + 5 :]


def _four_components(small: bytes) -> bytes:
    at, end = frame_header(small)
    length = end - at - 2
    return (
        small[: at + 2]
        + (length + 3).to_bytes(2, "big")
        + small[at + 4 : at + 9]
        + b"\x04"
        + small[at + 10 : end]
        + b"\x04\x11\x00"
        + small[end:]
    )


CODINGS = "the host takes baseline and progressive JPEGs, 8 bits, Huffman-coded: what every browser shows"


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda j: _sof(j, 0xC9), f"frame 0: the JPEG is arithmetic-coded (SOF9): {CODINGS}"),
        (lambda j: _sof(j, 0xC3), f"frame 0: the JPEG is lossless (SOF3): {CODINGS}"),
        (lambda j: _sof(j, 0xC5), f"frame 0: the JPEG is hierarchical (SOF5): {CODINGS}"),
        (lambda j: _sof(j, 0xC1, 12), f"frame 0: the JPEG has 12-bit samples: {CODINGS}"),
        (_four_components, "frame 0: the JPEG has 4 colour components: the host takes 1 (grey) or 3 (colour)"),
    ],
    ids=["arithmetic", "lossless", "hierarchical", "12-bit", "CMYK"],
)
def test_codings_a_browser_may_not_show_are_refused(small, edit, message):
    assert refusal([record(edit(small))]) == (422, message)


def test_a_flood_of_segments_is_refused_unread(small):
    hostile = small[:2] + b"\xff\xfe\x00\x02" * MAX_SEGMENTS + small[2:]
    assert refusal([record(hostile)]) == (
        422,
        f"frame 0: the JPEG has more than {MAX_SEGMENTS} segments (a camera writes about 10): refused unread",
    )


def test_a_second_frame_header_is_refused(small):
    at, end = frame_header(small)
    assert refusal([record(small[:end] + small[at:end] + small[end:])]) == (
        422,
        (
            f"frame 0: the JPEG has a second frame header at byte {end}: the host reads a JPEG's segments in "
            "order and refuses one it cannot place"
        ),
    )


@pytest.mark.parametrize("cut", [2, 30, 4000])
def test_a_truncated_or_garbled_jpeg_does_not_decode(small, cut):
    assert refusal([record(small[:-cut])]) == BROKEN
    assert refusal([record(small[:300] + bytes(len(small) - 300))]) == BROKEN


def test_fill_bytes_before_a_marker_pass(small):
    """A marker may follow any number of FF bytes: read in one step, as the decoder skips them."""
    at = small.index(b"\xff\xda")
    assert refusal([record(small[:at] + b"\xff" * 100_000 + small[at:])]) is None
