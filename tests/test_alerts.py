"""The host watching its devices (edge.server.alerts): offline, overheating and drift raised once and cleared
once, on both backends; a real `edge run` killed with kill -9 goes late, then offline on the host, and a real
web hook (--alert-webhook) hears it, its secret path never in the host's log."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge.server import alerts, store, vitals
from tests.cli import edge_cli
from tests.server import Server, token
from tests.test_database import reports
from tests.videos import scan_video
from tests.webhooks import Receiver


def hot(made: list[dict], temperature: float, level: str = "ok") -> list[dict]:
    for report in made:
        report["health"] = {"cpu_temp_c": temperature, "throttled_now": []}
        report["drift"] = {
            "frames": 10,
            "level": level,
            "psi": dict.fromkeys(("top1", "margin", "entropy", "classes"), 0.1),
            "thresholds": [0.1, 0.25],
            "min_frames": 5,
        }
    return made


@pytest.mark.parametrize(
    ("temperature", "flags", "held", "overheating"),
    [
        (80.0, [], set(), True),
        (79.9, [], set(), False),
        (79.9, [], {"overheating"}, True),  # held past the line it was raised at
        (75.0, [], {"overheating"}, True),
        (74.9, [], {"overheating"}, False),
        (60.0, ["soft-temperature-limit"], set(), True),  # the firmware caps the clock: hot, whatever the figure
        (None, ["under-voltage"], set(), False),
    ],
)
def test_overheating_is_raised_at_80_and_cleared_below_75(temperature, flags, held, overheating):
    health = {"throttled_now": flags, **({"cpu_temp_c": temperature} if temperature is not None else {})}
    assert (
        "overheating" in alerts.conditions({"health": health}, "online", dict.fromkeys(held, 0.0), 1.0)
    ) is overheating


@pytest.mark.parametrize(
    ("level", "held", "drift"),
    [("drift", set(), True), ("watch", set(), False), ("watch", {"drift"}, True), ("ok", {"drift"}, False)],
)
def test_drift_is_raised_at_drift_and_cleared_at_ok(level, held, drift):
    assert ("drift" in alerts.conditions({"drift": level}, "online", dict.fromkeys(held, 0.0), 1.0)) is drift


def test_each_alert_is_raised_once_and_cleared_once(db):
    store.store_posts(db, [("reports", "pi-1", hot(reports("pi-1", 1), 83.2, "drift"))])
    store.store_posts(db, [("reports", "pi-2", hot(reports("pi-2", 1), 50.0))])
    seen = store.watched(db)[0][1]
    raised = list(alerts.check(db, seen + 1))
    assert [(e["device"], e["alert"], e["state"]) for e in raised] == [
        ("pi-1", "overheating", "raised"),
        ("pi-1", "drift", "raised"),
    ]
    assert raised[0]["text"] == "edge: pi-1 is overheating: CPU at 83.2 °C"
    assert list(alerts.check(db, seen + 2)) == []  # held: nothing new to say, however often the host looks
    assert [a["alert"] for a in alerts.active(db)["pi-1"]] == ["overheating", "drift"]
    silent = vitals.OFFLINE * 1 + vitals.SLACK + 1  # windows of 0.5 s count as 1 s
    db.execute("UPDATE devices SET last_seen = last_seen - ?", (silent,))
    gone = list(alerts.check(db, seen))
    assert {(e["device"], e["alert"]) for e in gone} == {("pi-1", "offline"), ("pi-2", "offline")}
    assert gone[0]["text"].startswith("edge: pi-1 is offline: no report for 11 s (it reports every 1 s)")
    store.store_posts(db, [("reports", "pi-1", hot(reports("pi-1", 1, start=1.9e9), 74.0, "watch"))])
    back = list(alerts.check(db, time.time()))
    assert [(e["device"], e["alert"], e["state"]) for e in back] == [
        ("pi-1", "offline", "cleared"),
        ("pi-1", "overheating", "cleared"),  # 74 °C: below the line back; drift at watch is still held
    ]
    assert back[1]["cpu_temp_c"] == 74.0 and back[1]["text"] == "edge: pi-1 has cooled down: CPU at 74.0 °C"
    assert [a["alert"] for a in alerts.active(db)["pi-1"]] == ["drift"]


def test_an_offline_alert_clears_only_once_a_report_came_since(db):
    """Two hosts whose clocks differ: the one ahead raises offline; the one behind, to which the device still
    looks online, does not clear it. Each change is committed before its event is handed out."""
    store.store_posts(db, [("reports", "pi-1", reports("pi-1", 1))])
    silent = vitals.OFFLINE * 1 + vitals.SLACK + 1
    db.execute("UPDATE devices SET last_seen = last_seen - ?", (silent,))
    now = time.time()
    ahead = alerts.check(db, now)
    first = next(ahead)
    assert (first["alert"], first["state"]) == ("offline", "raised")
    assert [a["alert"] for a in alerts.active(db)["pi-1"]] == ["offline"]  # committed before it was told
    assert list(ahead) == []
    assert list(alerts.check(db, now - silent)) == []  # behind: online by its clock, but no report has come
    store.store_posts(db, [("reports", "pi-1", reports("pi-1", 1, start=1.9e9))])
    [back] = alerts.check(db, time.time())  # a report came since: cleared
    assert (back["alert"], back["state"]) == ("offline", "cleared")


def test_an_alert_without_a_temperature_says_none():
    line = alerts.event(
        "pi-1", "overheating", "raised", 0.0, {"cpu_temp_c": None, "throttled_now": ["soft-temperature-limit"]}
    )
    assert line["text"] == "edge: pi-1 is overheating, its firmware caps the clock"


@pytest.fixture(scope="module")
def long_video(digits, tmp_path_factory):
    """60 s of real scans of a 2 at 30 fps, played in real time: a run that lasts until it is stopped."""
    return scan_video(tmp_path_factory.mktemp("video") / "twos.avi", Path(digits) / "2", 1800)


def test_a_device_killed_with_kill_9_goes_offline_on_the_host_and_its_hook_hears_it(e2e, long_video, tmp_path):
    db = tmp_path / "edge.db"
    secret = "/hooks/k3y-in-the-path"
    with Receiver() as hook, Server(db, None, "--alert-webhook", hook.url + secret).start() as server:
        device, reader = token(db, "pi-1"), token(db, "alice", "--reader")
        run = subprocess.Popen(
            [sys.executable, "-m", "edge.cli", "run", e2e.bundle, "--source", long_video, "--realtime"]
            + ["--report-to", server.url, "--device-id", "pi-1", "--report-every", "1"]
            + ["--outbox", str(tmp_path / "outbox.db")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "EDGE_TOKEN": device},
        )
        try:
            states = [poll(server, reader, lambda s: s == "online", 60)]
            run.send_signal(signal.SIGKILL)
            run.wait(10)
            states += [
                poll(server, reader, lambda s: s != "online", 15),
                poll(server, reader, lambda s: s == "offline", 15),
            ]
            deadline = time.monotonic() + alerts.TICK + 5
            while not hook.events() and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            run.kill()
        server.stop()
        log = server.process.stderr.read().decode()
    assert states == ["online", "late", "offline"]
    [event] = hook.events()
    assert (event["event"], event["device"], event["alert"], event["state"]) == ("alert", "pi-1", "offline", "raised")
    assert event["interval"] == pytest.approx(1.0, abs=0.2)
    assert "edge: pi-1 is offline" in log and "k3y" not in log


def poll(server: Server, reader: str, wanted, within: float) -> str:
    """pi-1's state on the host, once `wanted(state)` holds."""
    deadline = time.monotonic() + within
    while True:
        status, body = server.get("/api/v1/devices", reader)
        found = [d["state"] for d in body["devices"]] if status == 200 else []
        if found and wanted(found[0]):
            return found[0]
        assert time.monotonic() < deadline, f"pi-1 is {found} after {within} s"
        time.sleep(0.2)


def test_an_alert_webhook_that_is_no_url_is_one_line(tmp_path):
    r = edge_cli("serve", "--db", tmp_path / "edge.db", "--alert-webhook", "ftp://example.org/x")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "--alert-webhook: give an http(s):// URL to POST events to, e.g. http://192.168.1.20:1880/edge" in r.stderr
    assert not (tmp_path / "edge.db").exists()
