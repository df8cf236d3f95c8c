"""The collected-frame record: its JPEG read without decoding, the labels a person may give, and the folders
the export names for any label."""

import urllib.parse

import cv2
import pytest

from edge.frame_record import check_label, check_record, folder_name, jpeg_size, make_record


@pytest.mark.parametrize("flags", [[], [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]])
def test_jpeg_size_reads_the_frame_header(digits, flags):
    scan = cv2.resize(cv2.imread(str(next((digits / "1").iterdir()))), (640, 360))
    data = cv2.imencode(".jpg", scan, flags)[1].tobytes()
    assert jpeg_size(data) == (640, 360)
    assert jpeg_size(cv2.imencode(".png", scan)[1].tobytes()) is None
    assert jpeg_size(data[:20]) is None and jpeg_size(b"") is None


def test_check_record_names_what_is_wrong(digits):
    data = cv2.imencode(".jpg", cv2.imread(str(next((digits / "1").iterdir()))))[1].tobytes()
    meta = {
        "id": "0123456789abcdef",
        "device_id": "pi-door",
        "run_id": "r" * 16,
        "model_sha256": "c" * 64,
        "time": 1.8e9,
        "frame": 3,
        "source": "rtsp://***@cam/s",
        "reason": "wrong",
        "label": "1",
        "top_k": [["1", 0.75]],
        "scores": [0.25, 0.75],
        "labels": ["0", "1"],
        "truth": "0",
    }
    assert check_record(make_record(data, meta)) is None
    assert check_record(make_record(data, {**meta, "frame": -1})) == "'frame' must be the frame's index in the run"
    assert (
        check_record({**make_record(data, meta), "extra": "\ud800"})
        == "'extra' is not valid Unicode text (a lone surrogate)"
    )
    assert check_record([]) == "a frame must be a JSON object"


@pytest.mark.parametrize(
    "label, ok",
    [
        ("cat", True),
        ("coffee mug", True),
        ("été", True),
        ("x" * 100, True),
        ("", False),
        ("x" * 101, False),
        ("../up", False),
        (".hidden", False),
        ("a/b", False),
        ("a\\b", False),
        ("a:b", False),
        (" lead", False),
        ("trail ", False),
        ("tab\there", False),
        (None, False),
        (3, False),
        ("😀" * 63, True),
        ("😀" * 100, False),  # 252 and 400 bytes: a name is at most 255 on Linux and macOS
        ("👩‍👩‍👧", True),
        ("نامه‌ها", True),  # zero-width joiners: emoji and Persian need them
        ("CON", False),
        ("nul", False),
        ("Com1.txt", False),
        ("lpt¹", False),
        ("aux .tar", False),
        ("console", True),
        ("cat.", False),
        ("a\x85b", False),
        ("a\u202eb", False),
        ("a\u200fb", False),
        ("\ufeffbom", False),
        ("a\u2028b", False),
        ("a\ue000b", False),
        ("e\u0301", False),
        ("東京", True),
        ("50%", False),
    ],
)
def test_a_label_names_a_folder_on_any_file_system(label, ok):
    assert (check_label(label) is None) == ok


def test_the_refusal_names_what_is_wrong():
    assert check_label("😀" * 100).endswith("it is 400 bytes as UTF-8; give at most 255")
    assert check_label("CON").endswith("'CON' is a name Windows keeps for a device")
    assert check_label("a\u202eb").endswith(
        'it holds U+202E; give no / \\ : * ? " < > | %, control or invisible formatting characters'
    )
    assert check_label("x" * 101).endswith("it is 101 characters; give 1-100")


def test_a_model_s_own_class_is_a_label_whatever_it_holds():
    classes = ["cat", "a/b", "CON", "\x85"]
    assert [check_label(c, classes) for c in classes] == [None] * 4
    assert check_label("a/c", classes) is not None and check_label("a/b") is not None


HOSTILE_LABELS = [
    "a/b",
    "a%2Fb",
    "a_2Fb",
    "CON",
    "%43ON",
    "con.txt",
    "cat.",
    "cat",
    ".hidden",
    " lead",
    "trail ",
    "50%",
    "a\x00b",
    "a\u202eb",
    "e\u0301",
    "\u00e9",
    "😀" * 100,
    "😀" * 101,
    "x" * 1000,
    "x" * 999 + "y",
    "..",
    ".",
    "a\\b",
    "%",
    "%%",
    "a:b",
    "日本語/中文",
]


def test_the_export_folder_of_any_label_is_a_folder_everywhere_and_no_other_label_s():
    folders = [folder_name(label) for label in HOSTILE_LABELS]
    assert len(set(folders)) == len(folders)  # no two labels share a folder
    for label, folder in zip(HOSTILE_LABELS, folders, strict=True):
        # what a label may not hold but the escape character: a folder on every system
        assert check_label(folder.replace("%", "x")) is None, (label, folder)
        if check_label(label) is None:
            assert folder == label
        elif "%%" not in folder:  # not cut for length
            assert urllib.parse.unquote(folder, errors="surrogatepass") == label  # reversible
    assert folder_name("a/b") == "a%2Fb" and folder_name("CON") == "%43ON" and folder_name("cat.") == "cat%2E"
    assert folder_name("x" * 1000) != folder_name("x" * 999 + "y") and len(folder_name("x" * 1000)) == 100


def test_a_marker_without_length_hides_no_frame_header():
    """SOI, a restart marker and two bytes, a 20000x20000 frame header, then a 64x64 one: read as a length,
    the two bytes skipped the header a decoder reads, and the record passed as 64x64."""
    from edge.frame_record import jpeg_size

    def sof(w, h):
        return b"\xff\xc0\x00\x11\x08" + h.to_bytes(2, "big") + w.to_bytes(2, "big") + b"\x03" + b"\x01\x11\x00" * 3

    crafted = b"\xff\xd8\xff\xd0" + (2 + 19).to_bytes(2, "big") + sof(20000, 20000) + sof(64, 64)
    assert jpeg_size(crafted) is None
    assert jpeg_size(b"\xff\xd8" + sof(640, 480)) == (640, 480)
