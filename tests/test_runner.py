"""`edge run` on real video files (FFV1, lossless) and folders, with a truth schedule: every frame
accounted for, and field metrics equal to `edge eval` on the same frames."""

import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import time

import cv2
import numpy as np
import pytest

from edge.collect import CollectOptions
from edge.errors import EdgeError
from edge.eval.evaluate import evaluate
from edge.folders import scan
from edge.preview import has_gui
from edge.reporter import ReportOptions
from edge.runner import TICK, RunOptions, run
from tests.cli import edge_cli, edge_cli_without_tensorflow
from tests.server import Server, free_port

PER_CLASS = 12


@pytest.fixture(scope="module")
def walk(digits, tmp_path_factory):
    """A video walking past 12 scans of each digit, a schedule saying which is which, and the same
    frames as an image folder for `edge eval`."""
    out = tmp_path_factory.mktemp("walk")
    folder = scan(digits)
    writer = cv2.VideoWriter(str(out / "walk.avi"), cv2.VideoWriter.fourcc(*"FFV1"), 30.0, (48, 48))
    schedule, frame = [], 0
    for c, label in enumerate(folder.classes):
        paths = [p for p, y in zip(folder.paths, folder.labels, strict=True) if y == c][:PER_CLASS]
        schedule.append({"start_frame": frame, "end_frame": frame + len(paths) - 1, "label": label})
        for path in paths:
            bgr = cv2.imread(str(path))
            writer.write(bgr)
            (out / "frames" / label).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(out / "frames" / label / f"{frame:04d}.png"), bgr)
            frame += 1
    writer.release()
    (out / "walk.json").write_text(json.dumps(schedule))
    return out


def test_field_metrics_equal_edge_eval_on_the_same_frames(e2e, walk, tmp_path):
    summary = run(
        e2e.bundle,
        walk / "walk.avi",
        RunOptions(truth_schedule=walk / "walk.json", log_file=tmp_path / "log.jsonl", threads=2),
    )
    assert summary.frames == summary.evaluated == 4 * PER_CLASS
    assert summary.dropped == summary.failures == 0
    assert summary.source_mode.lower() == "48x48 ffv1 @30"  # what the source delivers, as OpenCV reports it
    offline = evaluate(e2e.bundle, walk / "frames", threads=2).report
    for key in ("n", "labels", "accuracy", "per_class", "macro", "weighted", "micro", "confusion_matrix"):
        assert getattr(summary, key) == getattr(offline, key), key
    records = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["frame"] for r in records] == list(range(4 * PER_CLASS))
    assert records[PER_CLASS]["truth"] == "1" and len(records[0]["top_k"]) == 3
    assert summary.latency_ms["inference"]["p50"] > 0 and summary.latency_ms["frame"]["p50"] > 0
    assert summary.peak_rss_mb > 10 and summary.fps > 0  # memory targets: benchmarks/run_bench.py


def test_frames_outside_the_schedule_are_not_evaluated(e2e, walk, tmp_path):
    (tmp_path / "part.json").write_text(json.dumps([{"start_s": 0, "end_s": 0.2, "label": "0"}]))  # frames 0-5
    summary = run(e2e.bundle, walk / "walk.avi", RunOptions(truth_schedule=tmp_path / "part.json", max_frames=30))
    assert summary.frames == 30 and summary.evaluated == 6
    assert summary.per_class["0"]["support"] == 6


def test_folder_source_and_a_bare_tflite(e2e, walk, tmp_path):
    (tmp_path / "labels.txt").write_text("0\n1\n2\n3\n")
    shutil.copy(e2e.bundle + "/model.tflite", tmp_path / "m.tflite")
    summary = run(tmp_path / "m.tflite", walk / "frames" / "2", RunOptions(labels=tmp_path / "labels.txt", truth="2"))
    assert summary.frames == summary.evaluated == PER_CLASS
    assert summary.per_class["2"]["support"] == PER_CLASS


def test_camera_sized_mjpg_gives_the_predictions_of_a_full_decode(e2e, walk, tmp_path):
    """A USB camera's 640x480 MJPG of the scans (each held for 3 frames, moving a little): the fast path
    (JPEG decoded at 1/8, resized in steps) against decoding whole and area-resizing as training did."""
    writer = cv2.VideoWriter(str(tmp_path / "camera.avi"), cv2.VideoWriter.fourcc(*"MJPG"), 30.0, (640, 480))
    schedule, frame = [], 0
    for label in sorted(p.name for p in (walk / "frames").iterdir()):
        start = frame
        for path in sorted((walk / "frames" / label).iterdir()):
            scan = cv2.resize(cv2.imread(str(path)), (640, 480), interpolation=cv2.INTER_CUBIC)
            for shift in (0, 6, 12):
                writer.write(np.roll(scan, shift, axis=(0, 1)))
                frame += 1
        schedule.append({"start_frame": start, "end_frame": frame - 1, "label": label})
    writer.release()
    (tmp_path / "camera.json").write_text(json.dumps(schedule))
    summaries, top1 = {}, {}
    for decode in ("fast", "full"):
        summaries[decode] = run(
            e2e.bundle,
            tmp_path / "camera.avi",
            RunOptions(truth_schedule=tmp_path / "camera.json", log_file=tmp_path / f"{decode}.jsonl", decode=decode),
        )
        top1[decode] = [json.loads(line)["label"] for line in (tmp_path / f"{decode}.jsonl").read_text().splitlines()]
    fast, full = summaries["fast"], summaries["full"]
    assert fast.frames == full.frames == frame == 4 * PER_CLASS * 3 and fast.failures == 0
    assert fast.reader["jpeg_scale"] == 8 and full.reader["jpeg_scale"] == 1
    # This 48 px model's calls move with any change of pixels: the same frames as JPEG at quality 90 and 95
    # agree on 99.1% of 1,360 scans. The 99% target is benchmarks/run_bench.py's, on the demo model. The
    # accuracies differ by at most the share of frames called differently (2.1 points in one export, 3 frames).
    # Retrained afresh, one model agreed on 96.5%: the bound is for a broken decode path, not one export's luck.
    agreement = np.mean([a == b for a, b in zip(top1["fast"], top1["full"], strict=True)])
    assert agreement >= 0.95, (agreement, fast.accuracy, full.accuracy)
    assert full.accuracy > 0.8  # the model reads the scans: agreement is not two runs of noise


def test_smoothing_and_threshold(e2e, walk, tmp_path):
    run(e2e.bundle, walk / "walk.avi", RunOptions(smooth=5, threshold=0.999, log_file=tmp_path / "l.jsonl"))
    records = [json.loads(line) for line in (tmp_path / "l.jsonl").read_text().splitlines()]
    assert any(r["label"] == "unknown" for r in records)
    assert all(r["label"] == "unknown" or r["score"] >= 0.999 for r in records)


def test_the_api_takes_run_options_or_their_keywords_alike(e2e, walk, tmp_path):
    """edge.run(options=RunOptions(...)) and edge.run(**keywords) run the same (a field with a flag of its own
    by its name: log_file for --log)."""
    import edge

    folder = walk / "frames" / "2"
    made = edge.run(e2e.bundle, folder, options=RunOptions(truth="2", smooth=3, log_file=tmp_path / "a.jsonl"))
    keywords = edge.run(e2e.bundle, folder, truth="2", smooth=3, log_file=tmp_path / "b.jsonl")
    assert (made.frames, made.accuracy, made.options) == (keywords.frames, keywords.accuracy, keywords.options)
    assert made.frames == PER_CLASS and made.options["smooth"] == 3
    assert (tmp_path / "a.jsonl").read_text().count("\n") == (tmp_path / "b.jsonl").read_text().count("\n") == 12


@pytest.mark.parametrize(
    "args,message",
    [
        (["--truth", "seven"], "not one of the model's labels"),
        (["--truth", "1", "--truth-schedule", "{walk}/walk.json"], "not both"),
        (["--truth-schedule", "{walk}/frames"], "cannot read"),
        (["--smooth", "0"], "--smooth 0"),
        (["--source", "{walk}/missing.avi"], "not a camera index"),
        (["--camera-mode", "640x480"], "--camera-mode is for cameras (0, /dev/videoN), not a file"),
        (["--camera-mode", "640*480", "--source", "0"], "give WIDTHxHEIGHT[@FPS][/FOURCC]"),
        pytest.param(
            ["--preview"], "--preview needs", marks=pytest.mark.skipif(has_gui(), reason="this OpenCV has a GUI")
        ),
    ],
)
def test_cli_bad_options(e2e, walk, args, message):
    args = [a.format(walk=walk) for a in args]
    if "--source" not in args:
        args = ["--source", walk / "walk.avi", *args]
    r = edge_cli("run", e2e.bundle, *args)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_bad_schedules(e2e, walk, tmp_path):
    cases = {
        '[{"start_frame": 0, "end_frame": 5}]': "needs a label",
        '[{"start_frame": 0, "end_frame": 5, "label": "0"}, '
        '{"start_frame": 5, "end_frame": 9, "label": "1"}]': "overlap",
        '[{"start_frame": 3, "end_frame": 1, "label": "0"}]': "0 <= start <= end",
        "{nope": "not valid JSON",
    }
    for text, message in cases.items():
        (tmp_path / "s.json").write_text(text)
        r = edge_cli("run", e2e.bundle, "--source", walk / "walk.avi", "--truth-schedule", tmp_path / "s.json")
        assert r.returncode == 2 and message in r.stderr, (text, r.stderr)


def test_run_works_where_tensorflow_cannot_be_imported(e2e, walk):
    """The device install: numpy, OpenCV, click and LiteRT only."""
    r = edge_cli_without_tensorflow("run", e2e.bundle, "--source", walk / "walk.avi", "--truth", "0", "--json", "-")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["frames"] == summary["per_class"]["0"]["support"] == 4 * PER_CLASS


@pytest.mark.parametrize(
    "args,message",
    [
        (["--duration", "nan"], "--duration nan: give a positive number of seconds"),
        (["--duration", "inf"], "--duration inf: give a positive number of seconds"),
        (["--truth", ""], "--truth is empty"),
        (["--truth", "  "], "--truth is empty"),
        (["--threads", "10000"], "--threads 10000 must be at least 1 and at most"),
        (["--threshold", "nan"], "--threshold nan must be a number from 0 to 1"),
        (
            ["--smooth", "99999999999999999999"],
            "--smooth 99999999999999999999 must be at least 1 (1: no smoothing) and",
        ),
        (["--top-k", "100"], "--top-k 100: the model has 4 classes; give 1 to 4"),
        (["--source", ""], "--source is empty"),
    ],
)
def test_odd_option_values_are_one_line_errors(e2e, walk, args, message):
    if "--source" not in args:
        args = ["--source", walk / "walk.avi", *args]
    r = edge_cli("run", e2e.bundle, *args)
    assert r.returncode == 2 and r.stderr.splitlines() == [r.stderr.strip()] and message in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_threads_are_bounded_for_every_command(e2e, walk):
    r = edge_cli("eval", e2e.bundle, "--data", walk / "frames", "--threads", "10000")
    assert r.returncode == 2 and r.stderr.splitlines() == [r.stderr.strip()], r.stderr
    cpus = len(os.sched_getaffinity(0))
    assert f"--threads 10000 must be at least 1 and at most {4 * cpus} (4 for each of the {cpus} CPUs" in r.stderr


def test_a_truncated_video_says_it_ended_early(e2e, digits, tmp_path):
    """A file cut short by a full disk or an interrupted copy ends cleanly in OpenCV: only the container's
    frame count tells."""
    scans = [cv2.imread(str(p)) for p in sorted((digits / "3").iterdir())[:40]]
    writer = cv2.VideoWriter(str(tmp_path / "whole.avi"), cv2.VideoWriter.fourcc(*"MJPG"), 30.0, (48, 48))
    for image in scans:
        writer.write(image)
    writer.release()
    data = (tmp_path / "whole.avi").read_bytes()
    (tmp_path / "cut.avi").write_bytes(data[: len(data) // 2])
    cut = run(e2e.bundle, tmp_path / "cut.avi", RunOptions(truth="3"))
    assert 0 < cut.frames < 40 and cut.failures <= 1  # the frame the cut went through does not decode
    assert (
        f"file {tmp_path / 'cut.avi'} ended early, after {cut.frames + cut.failures} of the 40 frames its "
        "container promised: the file may be truncated or damaged" in cut.notes
    )
    whole = run(e2e.bundle, tmp_path / "whole.avi", RunOptions(truth="3"))
    assert whole.frames == 40 and not [note for note in whole.notes if "ended early" in note]


class FilesOverHttp:
    """A folder served over HTTP from a thread: to edge, an http:// source is a live stream, like a camera's."""

    def __init__(self, folder):
        served = self
        self.requests = 0

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):
                served.requests += 1
                super().do_GET()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=folder))
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def test_a_stream_that_dies_ends_at_the_duration_and_reports_no_empty_windows(e2e, walk, tmp_path):
    """The stream goes down for good a moment in: edge keeps reopening it, the run still ends at --duration
    with its summary, and the windows without frames are counted, not reported. The password in the URL
    appears nowhere."""
    db = tmp_path / "edge.db"
    token = edge_cli("token", "create", "pi-door", "--db", db).stdout.strip()
    host, stream = Server(db).start(), FilesOverHttp(walk)
    source = f"http://edge:hunter2@127.0.0.1:{stream.port}/walk.avi?password=hunter2&channel=1"
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGE_")}
    runner = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edge.cli",
            "run",
            e2e.bundle,
            "--source",
            source,
            "--duration",
            "3",
            "--report-to",
            host.url,
            "--token",
            token,
            "--device-id",
            "pi-door",
            "--report-every",
            "1",
            "--outbox",
            tmp_path / "outbox.db",
            "--json",
            tmp_path / "summary.json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        while not stream.requests and runner.poll() is None:
            time.sleep(0.05)
        time.sleep(0.5)
        stream.stop()
        out, errors = runner.communicate(timeout=30)
        status, answer = host.get("/api/v1/devices/pi-door/reports?limit=10000")
    finally:
        if runner.poll() is None:
            runner.kill()
        host.stop()
    assert runner.returncode == 0, errors
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert 3 <= summary["seconds"] <= 3 + TICK + 0.1  # checked on ticks while no frame comes
    assert "stopped delivering frames; reopening" in errors and summary["failures"] >= 1
    reporting = summary["reporting"]
    reports = [r for r in answer["reports"] if r["run_id"] == reporting["run_id"]]
    assert status == 200 and reporting["pending"] == 0 and len(reports) == reporting["reports"] >= 1
    assert [r["frames"] for r in reports if not r["frames"]] == [] and reporting["empty_windows"] >= 1
    assert sum(r["frames"] for r in reports) == summary["frames"]
    assert summary["source"] == f"http://***@127.0.0.1:{stream.port}/walk.avi?password=***&channel=1"
    for shown in (out, errors, (tmp_path / "summary.json").read_text(), json.dumps(answer)):
        assert "hunter2" not in shown


@pytest.mark.parametrize("scheme", ["rtsp", "http"])
def test_a_dead_stream_with_a_password_is_not_echoed(e2e, scheme):
    source = f"{scheme}://admin:hunter2@127.0.0.1:{free_port()}/stream?token=hunter2"  # nothing listens there
    r = edge_cli("run", e2e.bundle, "--source", source, "--duration", "1")
    assert r.returncode == 2 and "error: cannot open stream " in r.stderr, r.stderr
    assert "hunter2" not in r.stdout + r.stderr and f"{scheme}://***@127.0.0.1" in r.stderr
    with pytest.raises(EdgeError) as e:
        run(e2e.bundle, source, RunOptions(duration=1))
    assert "hunter2" not in str(e.value)


def _dangling_link(tmp_path):
    """A log file whose folder has gone (a disk not mounted): it passes the checks, and cannot be opened."""
    (tmp_path / "log.jsonl").symlink_to(tmp_path / "gone" / "log.jsonl")
    return tmp_path / "log.jsonl"


@pytest.mark.parametrize("make", [lambda tmp: tmp / "missing" / "log.jsonl", _dangling_link])
def test_a_log_that_cannot_be_opened_is_one_line_at_once(e2e, digits, tmp_path, make):
    """The run stops at its first error, whatever it had started (the reader thread, the reporter): one line,
    exit 2, and the process ends."""
    log = make(tmp_path)
    try:
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "edge.cli",
                "run",
                e2e.bundle,
                "--source",
                digits / "3",
                "--log",
                log,
                "--report-to",
                f"http://127.0.0.1:{free_port()}",
                "--token",
                "t",
                "--device-id",
                "pi-door",
                "--outbox",
                tmp_path / "outbox.db",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"edge run did not end after an error at start: {e.stderr}")
    assert r.returncode == 2 and r.stderr.splitlines() == [r.stderr.strip()], r.stderr
    assert f"--log {log}" in r.stderr and "Traceback" not in r.stderr


def _unopenable_log(tmp_path):
    return _dangling_link(tmp_path), "--log"


def _log_on_a_full_disk(tmp_path):  # fails in the middle of the run, when the log's first block is written
    disk = tmp_path / "disk"
    (disk / "filler").write_bytes(b"\0" * (shutil.disk_usage(disk).free - 1_000))
    return disk / "log.jsonl", "No space left on device"


@pytest.mark.parametrize("fail", [_unopenable_log, _log_on_a_full_disk])
def test_an_error_in_a_run_leaves_no_thread_running(e2e, digits, tmp_path, fail, request):
    """Whatever the run had opened by its error is closed, and the error is edge's one-line kind: at open,
    after the reporter's and the collector's senders started; in the middle, with the reader running too."""
    if fail is _log_on_a_full_disk:
        assert request.getfixturevalue("small_disk") == tmp_path / "disk"
    log, message = fail(tmp_path)
    before = set(threading.enumerate())
    report = ReportOptions(f"http://127.0.0.1:{free_port()}", "t", "pi-door", outbox=tmp_path / "o.db", flush=0)
    collect = CollectOptions("every:50", store=tmp_path / "frames.db")
    with pytest.raises(EdgeError, match=message):
        run(e2e.bundle, digits / "3", RunOptions(log_file=log, truth="3", reporting=report, collecting=collect))
    assert [t.name for t in set(threading.enumerate()) - before if t.is_alive()] == []
