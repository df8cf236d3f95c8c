"""What the host keeps to watch each device by (edge.server.vitals), on both backends: the latest window's
interval, frame rate, latency, drift level and health, kept as reports arrive and filled in for a store of
version 6; a device online, late or offline by its own report interval."""

import sqlite3
import time

import pytest

from edge.server import alerts, database, schema, store, vitals
from tests.test_database import reports

HEALTH = {"cpu_temp_c": 71.5, "throttled_now": ["soft-temperature-limit"], "camera_fps": 12.0}


def with_figures(made: list[dict]) -> list[dict]:
    for n, report in enumerate(made):
        report["health"] = {**HEALTH, "uptime_s": 100.0 + n}
        report["drift"] = {
            "frames": 10,
            "level": "watch",
            "psi": dict.fromkeys(("top1", "margin", "entropy", "classes"), 0.1),
            "thresholds": [0.1, 0.25],
            "min_frames": 5,
        }
    return made


def test_the_latest_window_s_figures_are_kept_beside_the_device(db):
    made = with_figures(reports("pi-1", 3))
    store.store_posts(db, [("reports", "pi-1", made[1:])])
    store.store_posts(db, [("reports", "pi-1", made[:1])])  # an older window, late: not the latest
    [device] = store.devices(db)
    assert device["vitals"] == {
        "interval": 0.5,
        "fps": 30.0,
        "latency_ms": 4.0,
        "drift": "watch",
        "health": {**HEALTH, "uptime_s": 102.0},
    }


def test_a_figure_of_the_wrong_kind_is_left_out_of_the_vitals():
    """The report schema takes a number or a list of words for any figure (a newer device may send new ones);
    what the host watches by, alerts and /metrics, reads only figures of their own kind."""
    made = reports("pi-1", 1)
    made[0]["health"] = {"cpu_temp_c": ["hot"], "throttled_now": 5, "memory_percent": 40.0, "new_flags": ["x"]}
    assert vitals.from_report(made[0])["health"] == {"memory_percent": 40.0}


def test_a_store_of_version_6_gets_its_devices_vitals_from_their_latest_reports(db):
    store.store_posts(db, [("reports", "pi-1", with_figures(reports("pi-1", 2)))])
    odd = reports("pi-2", 1)
    odd[0]["health"] = "x"  # as a version 6 host took it, unchecked: no health
    store.store_posts(db, [("reports", "pi-2", odd)])  # no health, no drift
    db.execute("UPDATE devices SET last_seen = last_seen - 3600 WHERE device = 'pi-2'")  # retired an hour ago
    if isinstance(db, database.Postgres):
        db.execute("ALTER TABLE devices DROP COLUMN vitals")
        db.execute("DROP TABLE alerts")
        db.execute("UPDATE edge_schema SET version = 6")
        schema.migrate_postgres(db, "the test's")
    else:
        db.execute("ALTER TABLE devices DROP COLUMN vitals")
        db.execute("DROP TABLE alerts")
        db.execute("PRAGMA user_version = 6")
        schema.migrate(db, "the test's")
    found = {d["device"]: d["vitals"] for d in store.devices(db)}
    assert found["pi-1"]["health"]["uptime_s"] == 101.0 and found["pi-1"]["drift"] == "watch"
    assert found["pi-2"] == {"interval": 0.5, "fps": 30.0, "latency_ms": 4.0, "drift": None, "health": {}}
    assert [a["alert"] for a in alerts.active(db)["pi-2"]] == ["offline"]  # marked: no news at the first look
    first = list(alerts.check(db, time.time()))  # pi-1's firmware caps its clock: that is news
    assert [(e["device"], e["alert"]) for e in first] == [("pi-1", "overheating")]


def test_a_sqlite_store_of_version_6_opened_by_a_host_is_upgraded(tmp_path):
    path = tmp_path / "edge.db"
    db = store.open_db(path)
    store.store_posts(db, [("reports", "pi-1", reports("pi-1", 1))])
    db.executescript("ALTER TABLE devices DROP COLUMN vitals; DROP TABLE alerts; PRAGMA user_version = 6")
    db.close()
    store.open_db(path).close()
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == schema.VERSION == 7
    assert raw.execute("SELECT vitals FROM devices").fetchone()[0].startswith('{"interval":0.5')


@pytest.mark.parametrize(
    ("interval", "age", "state"),
    [
        (10.0, 0.0, "online"),
        (10.0, 25.0, "online"),  # two windows and the slack
        (10.0, 25.5, "late"),
        (10.0, 55.0, "late"),
        (10.0, 55.5, "offline"),
        (0.0, 7.0, "online"),  # a window of an instant counts as a second
        (0.0, 7.5, "late"),
        (3600.0, 3 * 3600, "late"),
    ],
)
def test_a_device_is_late_after_two_of_its_windows_and_offline_after_five(interval, age, state):
    assert vitals.state({"interval": interval}, 1000.0, 1000.0 + age) == state


def test_a_device_without_vitals_is_judged_by_the_shortest_interval():
    assert vitals.state(None, 0.0, 7.0) == "online" and vitals.state(None, 0.0, 11.0) == "offline"
