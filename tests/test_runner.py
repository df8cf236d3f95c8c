"""`edge run` on real video files (FFV1, lossless) and folders, with a truth schedule: every frame
accounted for, and field metrics equal to `edge eval` on the same frames."""
import json
import shutil

import cv2
import pytest

from edge.eval.evaluate import evaluate
from edge.folders import scan
from edge.preview import has_gui
from edge.runner import RunOptions, run
from tests.cli import edge_cli, edge_cli_without_tensorflow

PER_CLASS = 12


@pytest.fixture(scope="module")
def walk(digits, tmp_path_factory):
    """A video walking past 12 scans of each digit, a schedule saying which is which, and the same
    frames as an image folder for `edge eval`."""
    out = tmp_path_factory.mktemp("walk")
    folder = scan(digits)
    writer = cv2.VideoWriter(str(out / "walk.avi"), cv2.VideoWriter_fourcc(*"FFV1"), 30.0, (48, 48))
    schedule, frame = [], 0
    for c, label in enumerate(folder.classes):
        paths = [p for p, y in zip(folder.paths, folder.labels) if y == c][:PER_CLASS]
        schedule.append({"start_frame": frame, "end_frame": frame + len(paths) - 1, "label": label})
        for i, path in enumerate(paths):
            bgr = cv2.imread(str(path))
            writer.write(bgr)
            (out / "frames" / label).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(out / "frames" / label / f"{frame:04d}.png"), bgr)
            frame += 1
    writer.release()
    (out / "walk.json").write_text(json.dumps(schedule))
    return out


def test_field_metrics_equal_edge_eval_on_the_same_frames(e2e, walk, tmp_path):
    summary = run(e2e["bundle"], walk / "walk.avi",
                  RunOptions(truth_schedule=walk / "walk.json", log_file=tmp_path / "log.jsonl", threads=2))
    assert summary["frames"] == summary["evaluated"] == 4 * PER_CLASS
    assert summary["dropped"] == summary["failures"] == 0
    assert summary["source_mode"].lower() == "48x48 ffv1 @30"  # what the source delivers, as OpenCV reports it
    offline = evaluate(e2e["bundle"], walk / "frames", threads=2).report
    for key in ("n", "labels", "accuracy", "per_class", "macro", "weighted", "micro", "confusion_matrix"):
        assert summary[key] == offline[key], key
    records = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["frame"] for r in records] == list(range(4 * PER_CLASS))
    assert records[PER_CLASS]["truth"] == "1" and len(records[0]["top_k"]) == 3
    assert summary["latency_ms"]["inference"]["p50"] > 0 and summary["latency_ms"]["frame"]["p50"] > 0
    assert summary["peak_rss_mb"] > 10 and summary["fps"] > 0  # memory targets: benchmarks/run_bench.py


def test_frames_outside_the_schedule_are_not_evaluated(e2e, walk, tmp_path):
    (tmp_path / "part.json").write_text(json.dumps([{"start_s": 0, "end_s": 0.2, "label": "0"}]))  # frames 0-5
    summary = run(e2e["bundle"], walk / "walk.avi", RunOptions(truth_schedule=tmp_path / "part.json", max_frames=30))
    assert summary["frames"] == 30 and summary["evaluated"] == 6
    assert summary["per_class"]["0"]["support"] == 6


def test_folder_source_and_a_bare_tflite(e2e, walk, tmp_path):
    (tmp_path / "labels.txt").write_text("0\n1\n2\n3\n")
    shutil.copy(e2e["bundle"] + "/model.tflite", tmp_path / "m.tflite")
    summary = run(tmp_path / "m.tflite", walk / "frames" / "2", RunOptions(labels=tmp_path / "labels.txt", truth="2"))
    assert summary["frames"] == summary["evaluated"] == PER_CLASS
    assert summary["per_class"]["2"]["support"] == PER_CLASS


def test_smoothing_and_threshold(e2e, walk, tmp_path):
    run(e2e["bundle"], walk / "walk.avi", RunOptions(smooth=5, threshold=0.999, log_file=tmp_path / "l.jsonl"))
    records = [json.loads(line) for line in (tmp_path / "l.jsonl").read_text().splitlines()]
    assert any(r["label"] == "unknown" for r in records)
    assert all(r["label"] == "unknown" or r["score"] >= 0.999 for r in records)


@pytest.mark.parametrize("args,message", [
    (["--truth", "seven"], "not one of the model's labels"),
    (["--truth", "1", "--truth-schedule", "{walk}/walk.json"], "not both"),
    (["--truth-schedule", "{walk}/frames"], "cannot read"),
    (["--smooth", "0"], "--smooth 0"),
    (["--source", "{walk}/missing.avi"], "not a camera index"),
    (["--camera-mode", "640x480"], "--camera-mode is for cameras (0, /dev/videoN), not a file"),
    (["--camera-mode", "640*480", "--source", "0"], "give WIDTHxHEIGHT[@FPS][/FOURCC]"),
    pytest.param(["--preview"], "--preview needs", marks=pytest.mark.skipif(has_gui(), reason="this OpenCV has a GUI")),
])
def test_cli_bad_options(e2e, walk, args, message):
    args = [a.format(walk=walk) for a in args]
    if "--source" not in args:
        args = ["--source", walk / "walk.avi", *args]
    r = edge_cli("run", e2e["bundle"], *args)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_bad_schedules(e2e, walk, tmp_path):
    cases = {"[{\"start_frame\": 0, \"end_frame\": 5}]": "needs a label",
             "[{\"start_frame\": 0, \"end_frame\": 5, \"label\": \"0\"}, "
             "{\"start_frame\": 5, \"end_frame\": 9, \"label\": \"1\"}]": "overlap",
             "[{\"start_frame\": 3, \"end_frame\": 1, \"label\": \"0\"}]": "0 <= start <= end",
             "{nope": "not valid JSON"}
    for text, message in cases.items():
        (tmp_path / "s.json").write_text(text)
        r = edge_cli("run", e2e["bundle"], "--source", walk / "walk.avi", "--truth-schedule", tmp_path / "s.json")
        assert r.returncode == 2 and message in r.stderr, (text, r.stderr)


def test_run_works_where_tensorflow_cannot_be_imported(e2e, walk):
    """The device install: numpy, OpenCV, click and LiteRT only."""
    r = edge_cli_without_tensorflow("run", e2e["bundle"], "--source", walk / "walk.avi", "--truth", "0", "--json", "-")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["frames"] == summary["per_class"]["0"]["support"] == 4 * PER_CLASS
