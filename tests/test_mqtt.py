"""edge.mqtt against a real broker (Debian's mosquitto): a broker down at start or gone mid-run, a queue past
its bound, credentials refused, and a device killed with kill -9, whose last will says it is offline."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge import mqtt
from tests.cli import edge_cli
from tests.mosquitto import Broker, Subscriber
from tests.videos import scan_video


def publisher(broker: Broker, log: list, user: str | None = None, password: str | None = None, **kw):
    return mqtt.Publisher(mqtt.broker(broker.url("edge", user)), password, "pi-1", log.append, **kw)


def wait(condition, within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "not within the time given"
        time.sleep(0.02)


def test_a_broker_down_at_start_gets_the_events_once_it_is_up():
    """Events sent while nothing listens wait in the queue (counted published, not acknowledged); once the broker
    starts, paho connects by itself and delivers them in order, and the last is the one retained."""
    with Broker() as broker:
        broker.stop()
        log: list[str] = []
        sender = publisher(broker, log, discovery=False)
        for n in range(5):
            sender.send("call", {"label": str(n)})
        time.sleep(0.3)
        assert sender.counts == {"published": 5, "acknowledged": 0, "dropped": 0}
        broker.start()
        wait(lambda: sender.unsent() == 0)  # 5 calls and "online"
        late = Subscriber(broker)
        assert late.wait_for(lambda topic, text: topic == "edge/pi-1/call")[1] == json.dumps({"label": "4"})
        late.close()
        done = sender.close(3.0)
    assert (done["published"], done["acknowledged"], done["unsent"], done["dropped"]) == (7, 7, 0, 0)
    assert done["refused"] is None
    assert log == [f"--publish: cannot reach {done['broker']}; events wait (up to 1000) meanwhile, trying again"]


def test_a_broker_gone_mid_run_drops_past_the_bound_and_recovers(monkeypatch):
    """The broker stopped under a connected device: the loss is logged once, events past QUEUE are dropped and
    counted (never blocking), and after the broker is back the queued ones arrive."""
    monkeypatch.setattr(mqtt, "QUEUE", 10)
    with Broker() as broker:
        log: list[str] = []
        sender = publisher(broker, log, discovery=False)
        wait(sender.connected.is_set)
        broker.stop()
        wait(lambda: not sender.connected.is_set())
        started = time.monotonic()
        for n in range(25):
            sender.send("call", {"label": str(n)})
        assert time.monotonic() - started < 1.0  # queued, not waited on
        assert sender.counts["dropped"] == 15
        broker.start()
        wait(lambda: sender.connected.is_set() and sender.unsent() == 0)
        watcher = Subscriber(broker)
        assert watcher.wait_for(lambda topic, text: topic == "edge/pi-1/call")[1] == json.dumps({"label": "9"})
        watcher.close()
        done = sender.close(3.0)
    assert [line for line in log if "lost" in line] == [
        f"--publish: lost mqtt://127.0.0.1:{broker.port}/edge; events wait (up to 10) meanwhile, trying again"
    ]
    assert done["dropped"] == 15 and done["unsent"] == 0


@pytest.mark.parametrize("password, refused", [("right", None), ("wrong", "not authorized")])
def test_credentials_are_checked_by_the_broker(password, refused):
    with Broker(user="ha", password="right") as broker:
        log: list[str] = []
        sender = publisher(broker, log, user="ha", password=password, discovery=False)
        wait(lambda: sender.connected.is_set() or sender.refused is not None)
        done = sender.close(1.0)
    if refused is None:
        assert done["refused"] is None and log == []
    else:
        assert done["refused"] == f"the broker mqtt://ha@127.0.0.1:{broker.port}/edge refused ha: {refused}"
        assert log == [f"--publish: {done['refused']}; check the user and $EDGE_MQTT_PASSWORD"]
    assert "right" not in repr(done) + "".join(log) and "wrong" not in repr(done) + "".join(log)


@pytest.fixture(scope="module")
def long_video(digits, tmp_path_factory):
    """60 s of real scans of a 2 at 30 fps, played in real time: a run that lasts until it is stopped."""
    return scan_video(tmp_path_factory.mktemp("video") / "twos.avi", Path(digits) / "2", 1800)


def test_a_refused_password_with_calls_required_stops_the_run_in_one_line(e2e, long_video, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGE_MQTT_PASSWORD", "wrong-one")
    with Broker(user="ha", password="right") as broker:
        r = subprocess.run(
            [sys.executable, "-m", "edge.cli", "run", e2e.bundle, "--source", long_video, "--realtime"]
            + ["--publish", broker.url("edge", "ha"), "--calls-required"],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert r.returncode == 2, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert (
        last == f"error: --calls-required: the broker mqtt://ha@127.0.0.1:{broker.port}/edge refused ha: not authorized"
    )
    assert "wrong-one" not in r.stderr


def test_without_calls_required_the_run_goes_on(e2e, digits, tmp_path):
    with Broker(user="ha", password="right") as broker:
        r = edge_cli(
            "run", e2e.bundle, "--source", Path(digits) / "2", "--publish", broker.url("edge", "ha"),
            "--json", tmp_path / "summary.json",
        )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "refused ha: not authorized; check the user and $EDGE_MQTT_PASSWORD" in r.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["calling"]["mqtt"]["acknowledged"] == 0 and summary["frames"] > 0


def test_a_device_killed_with_kill_9_is_said_offline_by_its_last_will(e2e, long_video):
    with Broker() as broker:
        watcher = Subscriber(broker, "edge/pi-1/status")
        run = subprocess.Popen(
            [sys.executable, "-m", "edge.cli", "run", e2e.bundle, "--source", long_video, "--realtime"]
            + ["--publish", broker.url("edge"), "--device-id", "pi-1", "--no-ha-discovery"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            watcher.wait_for(lambda topic, text: text == "online", within=60)
            killed = time.time()
            run.send_signal(signal.SIGKILL)
            run.wait(10)
            _, text, _, arrived = watcher.wait_for(lambda topic, text: text == "offline", within=10)
        finally:
            run.kill()
            watcher.close()
    assert arrived - killed < 5  # the broker saw the connection drop: no keepalive to wait out
