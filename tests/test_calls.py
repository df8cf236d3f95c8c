"""edge.calls: when a label becomes the call, the options that send calls, and `edge run --publish --webhook`
end to end: a real run on a video of real scans, a real mosquitto broker and subscriber, a real web hook."""

import json
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from edge.calls import CallOptions, CallTracker
from edge.errors import OptionError
from tests.cli import edge_cli
from tests.mosquitto import Broker, Subscriber
from tests.server import Server, token
from tests.videos import read_bgr
from tests.webhooks import Receiver


def calls_of(labels: list[str], hold: int) -> list[tuple[int, str]]:
    tracker = CallTracker(hold)
    return [(i, label) for i, label in enumerate(labels) if tracker.see(label)]


def test_a_label_is_called_once_it_has_led_hold_frames_in_a_row():
    """A camera dwells: a run of 7s with one 1 amid it is one call of 7, and a 7 seen again after a 1 that was
    never called is no new call."""
    labels = ["7"] * 5 + ["1"] + ["7"] * 4 + ["1"] * 3 + ["2", "2"]
    assert calls_of(labels, 3) == [(2, "7"), (12, "1")]
    assert calls_of(labels, 1) == [(0, "7"), (5, "1"), (6, "7"), (10, "1"), (13, "2")]
    assert calls_of(["7"] * 2, 3) == []


@pytest.mark.parametrize(
    "given, message",
    [
        ({"publish": "mqtt://broker/edge/#"}, "the topic prefix 'edge/#': it holds '#', a wildcard"),
        ({"publish": "mqtt://broker/+/cams"}, "the topic prefix '+/cams': it holds '+', a wildcard"),
        ({"publish": "mqtt://broker"}, "the topic prefix '': it is not a topic"),
        ({"publish": "mqtt://broker/$SYS"}, "the topic prefix '$SYS': it is not a topic"),
        ({"publish": "mqtt://broker/a//b"}, "the topic prefix 'a//b': it is not a topic"),
        ({"publish": "http://broker/edge"}, "--publish: give mqtt[s]://[USER@]HOST[:PORT]/TOPIC_PREFIX"),
        ({"publish": "mqtt://broker:99999/edge"}, "--publish: give mqtt[s]://"),
        ({"publish": "mqtt://ha:s3cret@broker/edge"}, "leave the password out of the URL"),
        ({"publish": "mqtt://broker/edge", "mqtt_password": "s3cret"}, "give mqtt://USER@HOST/PREFIX"),
        ({"publish": "mqtt://broker/edge", "hold": 0}, "--hold 0: give a whole number of frames"),
        ({"publish": "mqtt://broker/edge", "hold": 2.5}, "--hold 2.5: give a whole number of frames"),
        ({"webhook": "ftp://hooks/x"}, "--webhook: give an http(s):// URL"),
        ({"webhook": "http://:80/x"}, "--webhook: give an http(s):// URL"),
        ({}, "give --publish mqtt://HOST/PREFIX, --webhook URL, or both"),
    ],
)
def test_bad_call_options_say_what_to_do_and_never_show_a_secret(given, message):
    with pytest.raises(OptionError) as refused:
        CallOptions(**given)
    assert message in str(refused.value) and "s3cret" not in str(refused.value)


@pytest.mark.parametrize(
    "args, env, message",
    [
        (("--publish", "mqtt://ha:s3cret@broker/edge"), {}, "leave the password out of the URL"),
        (("--hold", "5"), {}, "--hold and --calls-required are for calls: add --publish"),
        (("--publish", "mqtt://broker/edge"), {"EDGE_MQTT_PASSWORD": "s3cret"}, "give mqtt://USER@HOST/PREFIX"),
    ],
)
def test_edge_run_refuses_them_in_one_line(args, env, message, e2e, digits, monkeypatch):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    r = subprocess.run(
        [sys.executable, "-m", "edge.cli", "run", e2e.bundle, "--source", str(Path(digits) / "2"), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and message in r.stderr, r.stderr
    assert "s3cret" not in r.stderr


def runs_of_scans(digits: Path, path: Path, classes: list[str], frames: int) -> Path:
    """A video (FFV1, 48x48, 30 fps) that dwells: `frames` frames of one scan of each class in turn."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"FFV1"), 30.0, (48, 48))
    for digit in classes:
        scan = read_bgr(sorted((digits / digit).iterdir())[0])
        for _ in range(frames):
            writer.write(scan)
    writer.release()
    return path


def test_edge_run_sends_its_calls_and_windows_to_mqtt_and_a_web_hook(e2e, digits, tmp_path):
    """The calls that arrive, on the broker and at the hook, in order, are those the run's own per-frame log
    implies with --hold; the broker holds the latest of each (retained), Home Assistant's discovery and the
    status (online, then offline at the end); each report window's metrics arrive too; every event was
    acknowledged by the broker and taken by the hook, none dropped."""
    video = runs_of_scans(Path(digits), tmp_path / "camera.avi", ["2", "0", "2", "3"], 30)
    db = tmp_path / "edge.db"
    with Broker() as broker, Receiver() as hook, Server(db).start() as server:
        watcher = Subscriber(broker)
        secret = token(db, "pi-yard")
        summary_file, log = tmp_path / "summary.json", tmp_path / "frames.jsonl"
        r = edge_cli(
            "run", e2e.bundle, "--source", video, "--log", log, "--json", summary_file,
            "--publish", broker.url("site/cams"), "--webhook", hook.url + "/hooks/s3cret-path", "--hold", "4",
            "--report-to", server.url, "--token", secret, "--device-id", "pi-yard", "--report-every", "1",
            "--outbox", tmp_path / "outbox.db",
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        summary = json.loads(summary_file.read_text())
        watcher.wait_for(lambda topic, text: topic == "site/cams/pi-yard/status" and text == "offline")
        watcher.close()
        late = Subscriber(broker, "site/cams/#")  # one that comes later reads the latest of each, retained
        late.wait_for(lambda topic, text: topic.endswith("/window"))
        retained = {topic: json.loads(text) if text[:1] == "{" else text for topic, text, _, _ in late.messages}
        late.close()
    labels = [json.loads(line)["label"] for line in log.read_text().splitlines()]
    expected = [label for _, label in calls_of(labels, 4)]
    assert len(expected) >= 3, labels  # the model calls the runs of scans, not one label throughout
    called = watcher.on("site/cams/pi-yard/call")
    assert [c["label"] for c in called] == expected
    assert [c["frame"] for c in called] == [i for i, _ in calls_of(labels, 4)]
    assert all(c["device"] == "pi-yard" and len(c["model"]["sha256"]) == 64 for c in called)
    hooked = [e for e in hook.events() if e["event"] == "call"]
    assert [{k: v for k, v in e.items() if k != "event"} for e in hooked] == called
    windows = watcher.on("site/cams/pi-yard/window")
    assert len(windows) == summary["reporting"]["reports"] >= 1
    assert sum(w["frames"] for w in windows) == summary["frames"] == 120
    assert watcher.on("site/cams/pi-yard/status") == ["online", "offline"]
    assert [e["status"] for e in hook.events() if e["event"] == "status"] == ["online", "offline"]
    config = watcher.on("homeassistant/sensor/edge_pi-yard/call/config")[0]
    assert config["state_topic"] == "site/cams/pi-yard/call" and config["availability_topic"].endswith("/status")
    calling = summary["calling"]
    sent = 1 + 5 + len(called) + len(windows) + 1  # online, discovery, calls, windows, offline
    assert calling["mqtt"] == {
        "broker": f"mqtt://127.0.0.1:{broker.port}/site/cams",
        "published": sent,
        "acknowledged": sent,
        "dropped": 0,
        "unsent": 0,
        "refused": None,
    }
    assert calling["webhook"]["delivered"] == 2 + len(called) + len(windows) and calling["webhook"]["unsent"] == 0
    assert "s3cret-path" not in summary_file.read_text() + r.stderr
    assert retained == {
        "site/cams/pi-yard/status": "offline",
        "site/cams/pi-yard/call": called[-1],
        "site/cams/pi-yard/window": windows[-1],
    }
