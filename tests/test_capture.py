"""Frame sources, with real video files written by OpenCV (FFV1 lossless, MJPG) and real image folders."""

import threading
import time

import cv2
import numpy as np
import pytest

from edge.capture import (
    JOIN,
    CameraMode,
    FrameReader,
    has_gstreamer,
    parse_camera_mode,
    parse_source,
    redact,
)
from edge.errors import EdgeError

N = 40


def write_video(path, fourcc="FFV1", fps=30.0, n=N, size=(64, 48)):
    """Frame i: a gradient whose brightness encodes i, plus a moving bar: every frame differs."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*fourcc), fps, size)
    assert writer.isOpened(), fourcc
    frames = []
    for i in range(n):
        bgr = np.zeros((size[1], size[0], 3), np.uint8)
        bgr[:, :, 0] = (i * 5) % 256
        bgr[:, :, 1] = np.linspace(0, 255, size[0], dtype=np.uint8)[None, :]
        bgr[:, i % size[0], 2] = 255
        writer.write(bgr)
        frames.append(bgr)
    writer.release()
    return path, frames


@pytest.mark.parametrize(
    "text,kind,live",
    [
        ("0", "camera", True),
        ("rtsp://cam.local/stream", "stream", True),
        ("http://x/video.mjpg", "stream", True),
        ("libcamerasrc ! videoconvert ! appsink", "gstreamer", True),
    ],
)
def test_parse_live_sources(text, kind, live):
    source = parse_source(text)
    assert (source.kind, source.live) == (kind, live)


def test_parse_files_folders_and_nonsense(tmp_path):
    (tmp_path / "v.avi").write_bytes(b"x")
    assert parse_source(tmp_path / "v.avi").kind == "file"
    assert parse_source(tmp_path).kind == "folder" and not parse_source(tmp_path).live
    with pytest.raises(EdgeError, match="not a camera index"):
        parse_source(tmp_path / "missing.avi")
    with pytest.raises(EdgeError, match="no such device"):
        parse_source("/dev/video97")
    with pytest.raises(EdgeError, match="--source is empty"):
        parse_source(" ")  # not the current folder


@pytest.mark.parametrize(
    "text,shown",
    [
        ("rtsp://admin:hunter2@cam.local:554/stream1", "rtsp://***@cam.local:554/stream1"),
        ("rtsp://admin:hun@ter2@cam/s", "rtsp://***@cam/s"),  # FFmpeg reads up to the last @
        (
            "http://cam/video.mjpg?user=admin&password=hunter2&channel=1",
            "http://cam/video.mjpg?user=admin&password=***&channel=1",
        ),
        ("https://cam/live?token=hunter2", "https://cam/live?token=***"),
        (
            "rtspsrc location=rtsp://me:hunter2@cam/s user-pw=hunter2 ! appsink",
            "rtspsrc location=rtsp://***@cam/s user-pw=*** ! appsink",
        ),
        ("rtsp://cam.local/stream1", "rtsp://cam.local/stream1"),
        ("0", "0"),
    ],
)
def test_credentials_in_a_source_are_redacted(text, shown):
    assert redact(text) == shown
    assert str(parse_source(text)).endswith(shown)


def test_a_mistyped_url_is_redacted_in_the_error():
    with pytest.raises(EdgeError, match=r"--source rtps://\*\*\*@cam/s: not a camera index") as e:
        parse_source("rtps://admin:hunter2@cam/s")
    assert "hunter2" not in str(e.value)


@pytest.mark.parametrize(
    "text,mode",
    [
        ("1280x720@30/mjpg", CameraMode(1280, 720, 30.0, "MJPG")),
        ("640x480", CameraMode(640, 480)),
        ("@15", CameraMode(fps=15.0)),
        ("/YUYV", CameraMode(fourcc="YUYV")),
        ("320x240@7.5", CameraMode(320, 240, 7.5)),
    ],
)
def test_parse_camera_modes(text, mode):
    assert parse_camera_mode(text) == mode
    assert parse_source("0", mode).mode == mode


@pytest.mark.parametrize("text", ["", "640x", "640x480@", "1280x720/MJPEG", "x480", "30fps"])
def test_bad_camera_modes(text):
    with pytest.raises(EdgeError, match="give WIDTHxHEIGHT"):
        parse_camera_mode(text)


def test_the_reader_says_what_the_source_delivers(tmp_path):
    path = tmp_path / "m.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 15.0, (64, 48))
    for i in range(3):
        writer.write(np.full((48, 64, 3), 80 * i, np.uint8))
    writer.release()
    with FrameReader(parse_source(path)) as reader:
        assert reader.delivers == CameraMode(64, 48, 15.0, "MJPG")
    assert not parse_camera_mode("64x48@15/MJPG").unmet_by(reader.delivers)
    assert parse_camera_mode("640x480/MJPG").unmet_by(reader.delivers)
    assert parse_camera_mode("@30").unmet_by(reader.delivers)
    with pytest.raises(EdgeError, match="--camera-mode is for cameras"):
        parse_source(path, CameraMode(640, 480))


def test_lossless_file_gives_every_frame_in_order(tmp_path):
    path, written = write_video(tmp_path / "v.avi")
    with FrameReader(parse_source(path)) as reader:
        frames = list(reader)
    assert [f.index for f in frames] == list(range(N))
    assert all(np.array_equal(f.rgb, cv2.cvtColor(w, cv2.COLOR_BGR2RGB)) for f, w in zip(frames, written, strict=True))
    assert frames[1].seconds == pytest.approx(1 / 30)
    assert reader.stats.read == N and reader.stats.dropped == 0


def test_a_slow_consumer_loses_nothing_from_a_file(tmp_path):
    path, _ = write_video(tmp_path / "v.avi", fourcc="MJPG")
    seen = []
    with FrameReader(parse_source(path), prepare=lambda rgb: threading.current_thread().name) as reader:
        for frame in reader:
            time.sleep(0.005)
            seen.append(frame)
    assert [f.index for f in seen] == list(range(N)) and reader.stats.dropped == 0
    assert {f.prepared for f in seen} == {"edge-capture"}  # preparation overlapped, on the reader thread


def test_realtime_keeps_the_newest_frame_and_counts_the_rest(tmp_path):
    path, _ = write_video(tmp_path / "v.avi", fps=200.0, n=60)  # a frame every 5 ms
    seen = []
    with FrameReader(parse_source(path), realtime=True) as reader:
        for frame in reader:
            time.sleep(0.02)  # a model four times slower than the camera
            seen.append(frame.index)
    assert reader.stats.dropped > 20 and seen == sorted(seen)
    assert len(seen) + reader.stats.dropped == reader.stats.read == 60  # every frame accounted for


def test_folder_source_skips_and_counts_unreadable_files(tmp_path):
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"{i}.png"), np.full((8, 8, 3), i * 40, np.uint8))
    (tmp_path / "1b.jpg").write_bytes(b"not a jpeg")
    (tmp_path / "notes.txt").write_text("ignored: not an image name")
    with FrameReader(parse_source(tmp_path)) as reader:
        frames = list(reader)
    assert [f.name for f in frames] == ["0.png", "1.png", "2.png"]
    assert reader.stats.failures == 1 and reader.stats.skipped[0][0].endswith("1b.jpg")


def test_unopenable_sources_fail_clearly(tmp_path):
    (tmp_path / "junk.avi").write_bytes(b"\0" * 100)
    with pytest.raises(EdgeError, match="cannot open"):
        FrameReader(parse_source(tmp_path / "junk.avi"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(EdgeError, match="no image files"):
        FrameReader(parse_source(tmp_path / "empty"))
    if not has_gstreamer():
        with pytest.raises(EdgeError, match="no GStreamer"):
            FrameReader(parse_source("videotestsrc ! appsink"))


class MjpegStream:
    """A real MJPEG-over-HTTP camera stream (what many IP cameras serve). Each connection sends
    `frames` JPEGs, then either closes ("break") or repeats its last frame forever ("freeze")."""

    def __init__(self, mode: str, frames: int = 30):
        import http.server
        import socketserver

        stream = self
        self.connections = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                stream.connections += 1
                connection = stream.connections
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                i = 0
                while not stream.closed:
                    level = connection * 100 + (min(i, frames - 1) if mode == "freeze" else i)
                    jpeg = cv2.imencode(".jpg", np.full((48, 64, 3), level % 256, np.uint8))[1].tobytes()
                    try:
                        self.wfile.write(
                            b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n%s\r\n"
                            % (len(jpeg), jpeg)
                        )
                    except OSError:
                        return
                    i += 1
                    if mode == "break" and i == frames:
                        return
                    time.sleep(0.02)

            def log_message(self, *args):
                pass

        self.closed = False
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/video.mjpg"

    def close(self):
        self.closed = True
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("mode", ["break", "freeze"])
def test_a_stream_that_breaks_or_freezes_is_reopened(mode):
    stream = MjpegStream(mode, frames=20)
    levels = []
    try:
        with FrameReader(parse_source(stream.url)) as reader:
            for frame in reader:
                levels.append(int(frame.rgb[0, 0, 0]))
                if levels[-1] >= 200:  # a frame from the second connection
                    break
    finally:
        stream.close()
    assert reader.stats.reopens >= 1 and reader.stats.failures >= 1 and stream.connections >= 2
    first = [level for level in levels if level < 200]
    # the first connection's 20 distinct frames, each once (a repeated frame is not a new one), or dropped
    assert len(first) <= 20 <= len(first) + reader.stats.dropped


def test_close_does_not_wait_for_a_read_blocked_in_opencv(tmp_path):
    """A stream that stops sending without closing the connection: OpenCV's read() blocks (FFmpeg's
    timeout). The reader thread releases the capture itself when the read returns; close() does not wait."""
    import socket

    data = write_video(tmp_path / "v.avi", fourcc="MJPG")[0].read_bytes()
    listener = socket.create_server(("127.0.0.1", 0))
    held = []

    def serve():
        connection, _ = listener.accept()
        held.append(connection)
        connection.recv(65536)
        connection.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: video/x-msvideo\r\nContent-Length: %d\r\n\r\n%s"
            % (len(data), data[: len(data) // 2])
        )  # then silence, the connection open

    threading.Thread(target=serve, daemon=True).start()
    with FrameReader(parse_source(f"http://127.0.0.1:{listener.getsockname()[1]}/v.avi"), tick=0.3) as reader:
        frames = 0
        for frame in reader:
            if frame is None:  # nothing for 0.3 s: the reader thread is stuck in read()
                break
            frames += 1
        start = time.perf_counter()
        reader.close()
        took = time.perf_counter() - start
    listener.close()
    assert frames > 0 and took < JOIN + 0.5, took


def test_mjpg_comes_decoded_no_larger_than_the_model_needs(tmp_path):
    from sklearn.datasets import load_sample_image

    photo = cv2.resize(load_sample_image("flower.jpg"), (640, 480), interpolation=cv2.INTER_AREA)  # RGB
    path = tmp_path / "camera.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 30.0, (640, 480))
    for i in range(N):
        writer.write(cv2.cvtColor(np.roll(photo, 8 * i, axis=1), cv2.COLOR_RGB2BGR))  # panning across the photo
    writer.release()
    with FrameReader(parse_source(path), covering=(224, 224)) as reader:
        frames = list(reader)
    assert reader.jpeg_scale == 2 and [f.index for f in frames] == list(range(N))
    assert {f.rgb.shape for f in frames} == {(240, 320, 3)} and reader.stats.failures == 0
    whole = cv2.resize(np.roll(photo, 8 * 5, axis=1), (320, 240), interpolation=cv2.INTER_AREA)
    assert np.abs(frames[5].rgb.astype(int) - whole).mean() < 4  # the same picture, in RGB
    assert all(reader.stats.per_frame_ms()[step] > 0 for step in ("read", "decode"))
    with FrameReader(parse_source(path), covering=(300, 300)) as reader:  # 1/2 would not cover 300 px
        assert next(iter(reader)).rgb.shape == (480, 640, 3) and reader.jpeg_scale == 1
    lossless, _ = write_video(tmp_path / "v.avi", size=(640, 480), n=2)
    with FrameReader(parse_source(lossless), covering=(224, 224)) as reader:  # not JPEG: decoded whole
        assert [f.rgb.shape for f in reader] == [(480, 640, 3)] * 2 and reader.stats.failures == 0
