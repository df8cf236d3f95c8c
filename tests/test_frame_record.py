"""The collected-frame record: its JPEG read without decoding, and the labels a person may give."""
import cv2
import pytest

from edge.frame_record import check_label, check_record, jpeg_size, make_record


@pytest.mark.parametrize("flags", [[], [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]])
def test_jpeg_size_reads_the_frame_header(digits, flags):
    scan = cv2.resize(cv2.imread(str(next((digits / "1").iterdir()))), (640, 360))
    data = cv2.imencode(".jpg", scan, flags)[1].tobytes()
    assert jpeg_size(data) == (640, 360)
    assert jpeg_size(cv2.imencode(".png", scan)[1].tobytes()) is None
    assert jpeg_size(data[:20]) is None and jpeg_size(b"") is None


def test_check_record_names_what_is_wrong(digits):
    data = cv2.imencode(".jpg", cv2.imread(str(next((digits / "1").iterdir()))))[1].tobytes()
    meta = {"id": "0123456789abcdef", "device_id": "pi-door", "run_id": "r" * 16, "model_sha256": "c" * 64,
            "time": 1.8e9, "frame": 3, "source": "rtsp://***@cam/s", "reason": "wrong", "label": "1",
            "top_k": [["1", 0.75]], "scores": [0.25, 0.75], "labels": ["0", "1"], "truth": "0"}
    assert check_record(make_record(data, meta)) is None
    assert check_record(make_record(data, {**meta, "frame": -1})) == "'frame' must be the frame's index in the run"
    assert check_record({**make_record(data, meta), "extra": "\ud800"}) == \
        "'extra' is not valid Unicode text (a lone surrogate)"
    assert check_record([]) == "a frame must be a JSON object"


@pytest.mark.parametrize("label, ok", [
    ("cat", True), ("coffee mug", True), ("été", True), ("x" * 100, True), ("", False), ("x" * 101, False),
    ("../up", False), (".hidden", False), ("a/b", False), ("a\\b", False), ("a:b", False), (" lead", False),
    ("trail ", False), ("tab\there", False), (None, False), (3, False)])
def test_a_label_names_a_folder_on_any_file_system(label, ok):
    assert (check_label(label) is None) == ok
