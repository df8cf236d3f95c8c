"""Drift without truth: the fingerprint convert and `edge eval --fingerprint` write, its refusal for another
model, and `edge run` on a video of the validation scans that turns dark part-way: ok before, drift after,
in every report the host stores and serves back."""

import json
import shutil

import cv2
import numpy as np
import pytest

import edge
from edge.converter.datasets import stratified_split
from edge.drift import Drift
from edge.errors import EdgeError
from edge.eval.evaluate import classify_all
from edge.folders import scan
from edge.images import read_rgb
from edge.model import load_model
from edge.runner import RunOptions, run
from tests.cli import edge_cli
from tests.server import Server

IN, CHANGED = 3000, 3000  # frames of the video: in distribution, then dark


def darker(bgr):
    """Half the light."""
    return (bgr * 0.5).astype(np.uint8)


@pytest.fixture(scope="module")
def scene(digits, tmp_path_factory):
    """A video of the e2e bundle's validation scans in a fixed shuffled order, then the same scans in half
    the light; and a folder of 8 scans a class to fingerprint bare files on."""
    out = tmp_path_factory.mktemp("scene")
    folder = scan(digits)
    _, val = stratified_split(folder.labels, 0.2, 0)  # the split e2e was validated on
    scans = [cv2.imread(str(folder.paths[i])) for i in np.random.default_rng(0).permutation(val)]
    writer = cv2.VideoWriter(str(out / "scene.avi"), cv2.VideoWriter.fourcc(*"FFV1"), 30.0, (48, 48))
    for i in range(IN + CHANGED):
        writer.write(scans[i % len(scans)] if i < IN else darker(scans[i % len(scans)]))
    writer.release()
    for c, label in enumerate(folder.classes):
        (out / "few" / label).mkdir(parents=True)
        for path in [p for p, y in zip(folder.paths, folder.labels, strict=True) if y == c][:8]:
            shutil.copy(path, out / "few" / label)
    return out


def held(image, frames: int, rng) -> list:
    """A camera dwelling on `image` for `frames` frames: each shifted by under half a pixel and 3% brighter or
    darker than the last, as a hand-held or wind-shaken camera and a flickering light make it."""
    out = []
    for _ in range(frames):
        dx, dy = rng.uniform(-0.5, 0.5, 2)
        moved = cv2.warpAffine(
            image, np.array([[1, 0, dx], [0, 1, dy]], np.float32), image.shape[1::-1], borderMode=cv2.BORDER_REPLICATE
        )
        out.append(np.clip(moved * rng.uniform(0.97, 1.03), 0, 255).astype(np.uint8))
    return out


@pytest.fixture(scope="module")
def dwelling(digits, e2e):
    """The e2e model's own scores on a camera that dwells: each validation scan held for 10 frames, the scans
    in six shuffled rounds; and one round of the same in half the light."""
    folder = scan(digits)
    _, val = stratified_split(folder.labels, 0.2, 0)
    scans = [read_rgb(folder.paths[i]) for i in val]
    rng = np.random.default_rng(0)
    model = load_model(e2e.bundle, threads=1)
    streams = {}
    for name, rounds, change in (("in", 6, None), ("dark", 1, darker)):
        frames = [
            frame
            for _ in range(rounds)
            for i in rng.permutation(len(scans))
            for frame in held(change(scans[i]) if change else scans[i], 10, rng)
        ]
        streams[name] = np.stack([s for s, _ in classify_all(model.interpreter, ((x, None) for x in frames))])
    return streams


def levels_of(drift: Drift, scores, window: int) -> list[str]:
    """The level of each whole window of `window` frames, counted frame by frame as edge run counts them."""
    levels = []
    for start in range(0, len(scores) - window + 1, window):
        counts = drift.counts()
        for row in scores[start : start + window]:
            counts.add(row)
        levels.append(drift.judge(counts)["level"])
    return levels


def test_a_camera_dwelling_on_in_distribution_scenes_stays_ok_and_a_dark_one_reaches_drift(e2e, dwelling):
    drift = Drift(e2e.fingerprint, min_frames=100)
    levels = levels_of(drift, dwelling["in"], 120)  # about 12 scans a window, not 120
    assert len(levels) >= 60 and levels.count("drift") <= 0.05 * len(levels), levels
    assert levels.count("ok") >= 0.8 * len(levels), levels
    dark = levels_of(drift, dwelling["dark"], 120)
    assert dark.count("drift") >= len(dark) / 3 and "drift" in dark[:2], dark


def test_a_window_says_how_many_views_it_held(e2e, dwelling):
    drift = Drift(e2e.fingerprint, min_frames=100)
    held_still = drift.counts()
    for row in dwelling["in"][:1200]:  # 120 scans, 10 frames each
        held_still.add(row)
    shuffled = drift.counts()
    for row in dwelling["in"][np.random.default_rng(1).permutation(1200)]:  # the same frames, in no order
        shuffled.add(row)
    assert 60 <= drift.judge(held_still)["views"] <= 300 < drift.judge(shuffled)["views"] <= 1200


@pytest.fixture
def bare(e2e, tmp_path):
    """The e2e model as a bare .tflite file with its labels."""
    shutil.copy(f"{e2e.bundle}/model.tflite", tmp_path / "m.tflite")
    (tmp_path / "labels.txt").write_text("0\n1\n2\n3\n")
    return tmp_path / "m.tflite"


def test_convert_fingerprints_the_exported_model_on_the_validation_images(e2e):
    made = e2e.fingerprint
    assert made["format_version"] == 1 and made["model_sha256"] == e2e.model["sha256"]
    assert made["n"] == e2e.metrics["n"] == sum(made["classes"]) and made["labels"] == e2e.labels
    for name in ("top1", "margin", "entropy"):
        assert sum(made["histograms"][name]["counts"]) == made["n"]


def test_the_level_stays_ok_in_distribution_and_reaches_drift_within_a_few_windows(e2e, scene, tmp_path):
    db = tmp_path / "edge.db"
    token = edge_cli("token", "create", "pi-dark", "--db", db).stdout.strip()
    host = Server(db).start()
    try:
        r = edge_cli(
            "run",
            e2e.bundle,
            "--source",
            scene / "scene.avi",
            "--threads",
            1,
            "--report-to",
            host.url,
            "--token",
            token,
            "--device-id",
            "pi-dark",
            "--report-every",
            0.15,
            "--outbox",
            tmp_path / "outbox.db",
            "--json",
            tmp_path / "summary.json",
            "--drift-min-frames",
            50,
        )
        status, answer = host.get("/api/v1/devices/pi-dark/reports?limit=1000")
    finally:
        host.stop()
    assert r.returncode == 0 and status == 200, r.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    reports = sorted(answer["reports"], key=lambda report: report["seq"])
    assert len(reports) == summary["reporting"]["reports"] >= 4
    first, windows = 0, []  # each window's first and last frame, and its level
    for report in reports:
        assert report["drift"]["frames"] == report["frames"]  # stored and served back as sent
        windows.append((first, first + report["frames"] - 1, report["drift"]["level"]))
        first += report["frames"]
    before = [level for start, end, level in windows if end < IN]
    after = [(level, end - start + 1) for start, end, level in windows if start >= IN]
    assert set(before) <= {"ok", "too few"} and "ok" in before, windows
    judged = [level for level, frames in after if frames >= summary["drift"]["min_frames"]]
    assert judged and set(judged) == {"drift"}, windows
    change = next(i for i, (start, end, _) in enumerate(windows) if end >= IN)
    assert [level for _, _, level in windows[change : change + 3]].count("drift") >= 1, windows
    assert summary["drift"]["windows"]["drift"] >= len(judged) and summary["drift"]["frames"] == IN + CHANGED
    level = summary["drift"]["level"]  # of the whole run: half of it dark
    assert level in ("watch", "drift") and f"drift      {level} on 6,000 frames: PSI top-1" in r.stdout, r.stdout
    assert "report windows:" in r.stdout


def test_eval_fingerprints_a_bundle_and_a_bare_file(e2e, scene, bare, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(e2e.bundle, bundle)
    r = edge_cli("eval", bundle, "--data", scene / "few", "--fingerprint")
    assert r.returncode == 0, r.stderr
    assert f"fingerprint of the scores on these 32 images written to {bundle}/edge.json" in r.stdout
    manifest = json.loads((bundle / "edge.json").read_text())
    assert manifest["fingerprint"]["n"] == 32 and manifest["metrics"] == e2e.metrics  # the rest as it was
    r = edge_cli(
        "eval", bare, "--labels", bare.parent / "labels.txt", "--data", scene / "few", "--fingerprint", "--json", "-"
    )
    assert r.returncode == 0 and json.loads(r.stdout)["fingerprint"] == str(tmp_path / "m.fingerprint.json")
    made = json.loads((tmp_path / "m.fingerprint.json").read_text())
    assert made["model_sha256"] == e2e.model["sha256"] and made["n"] == 32
    summary = run(bare, scene / "few" / "2", RunOptions(labels=bare.parent / "labels.txt"))
    assert summary.drift["level"] == "too few" and summary.drift["frames"] == 8


def test_without_a_fingerprint_there_is_no_drift_block_and_a_note_says_how(scene, bare):
    summary = run(bare, scene / "few" / "3", RunOptions(labels=bare.parent / "labels.txt"))
    assert "drift" not in summary.to_json()
    assert (
        "the model has no fingerprint, so drift is not watched: make one with 'edge eval MODEL --data "
        "VALIDATION_IMAGES --fingerprint'"
    ) in summary.notes


def test_a_fingerprint_of_another_model_is_refused(e2e, scene, bare, tmp_path):
    edge.evaluate(bare, scene / "few", labels=bare.parent / "labels.txt", fingerprint=True)
    fingerprint = tmp_path / "m.fingerprint.json"
    made = json.loads(fingerprint.read_text())
    fingerprint.write_text(json.dumps({**made, "model_sha256": "0" * 64}))
    r = edge_cli("run", bare, "--labels", bare.parent / "labels.txt", "--source", scene / "few" / "1")
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "is of another model (sha256 000000000000, this model's " in r.stderr and "--fingerprint" in r.stderr
    bundle = tmp_path / "bundle"
    shutil.copytree(e2e.bundle, bundle)
    manifest = json.loads((bundle / "edge.json").read_text())
    (bundle / "edge.json").write_text(json.dumps({**manifest, "fingerprint": {**made, "format_version": 2}}))
    with pytest.raises(EdgeError, match="has format_version 2; this edge reads 1: upgrade edge or make one"):
        run(bundle, scene / "few" / "1")


def test_a_bare_file_s_damaged_fingerprint_is_refused_at_start(e2e, scene, bare, tmp_path):
    """A <name>.fingerprint.json is held to the shape a bundle's is: a class list of another length (edited, or
    of a model with other labels) is one line at start, not a numpy error mid-run."""
    edge.evaluate(bare, scene / "few", labels=bare.parent / "labels.txt", fingerprint=True)
    fingerprint = tmp_path / "m.fingerprint.json"
    made = json.loads(fingerprint.read_text())
    fingerprint.write_text(json.dumps({**made, "classes": made["classes"][:3]}))
    r = edge_cli("run", bare, "--labels", bare.parent / "labels.txt", "--source", scene / "few" / "1")
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert f"{fingerprint}: classes must be a list of 4 counts (one a label), got [" in r.stderr, r.stderr


@pytest.mark.parametrize(
    "options,message",
    [
        ({"drift_thresholds": "nan,0.25"}, "drift_thresholds=nan,0.25: give two PSI values WATCH,DRIFT"),
        ({"drift_thresholds": (-0.1, 0.25)}, "drift_thresholds (-0.1, 0.25): give two"),
        ({"drift_thresholds": "0.3,0.1"}, "with 0 < WATCH <= DRIFT, e.g. 0.1,0.25"),
        ({"drift_thresholds": "0.1"}, "drift_thresholds=0.1: give two"),
        ({"drift_min_frames": 0}, "drift_min_frames=0 must be a whole number, at least 1"),
    ],
)
def test_bad_drift_options_are_refused_before_anything_runs(e2e, scene, options, message):
    with pytest.raises(EdgeError) as e:
        edge.run(e2e.bundle, scene / "few" / "0", **options)
    assert message in str(e.value)


def test_bad_drift_options_are_one_line_errors_from_the_cli(e2e, scene):
    for args, message in (
        (["--drift-thresholds", "0.3,0.1"], "--drift-thresholds 0.3,0.1: give two PSI values"),
        (["--drift-min-frames", "-1"], "--drift-min-frames -1 must be a whole number"),
    ):
        r = edge_cli("run", e2e.bundle, "--source", scene / "few" / "0", *args)
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and message in r.stderr and not r.stdout, r.stderr
