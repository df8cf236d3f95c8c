"""edge serve --keep-days (edge.server.retention) on both backends: old reports and unlabelled frames go, in
batches, oldest first; recent ones, labelled frames and the device list stay; a report sent again after it was
removed is taken as new. Times are set in the past through what the store keeps: `received`."""

import threading
import time

import cv2
import orjson
import pytest

from edge.errors import OptionError
from edge.server import retention, store
from edge.server.options import ServeOptions
from tests.cli import edge_cli
from tests.server import Server, token
from tests.test_database import reports
from tests.test_server_frames import record

DAYS = 30
OLD = 40 * retention.DAY  # seconds before now the old rows were received


def age(db, table: str, ids: list[str]) -> None:
    """Make rows look received OLD seconds earlier than they were (the order they came in kept)."""
    db.executemany(f"UPDATE {table} SET received = received - ? WHERE id = ?", [(OLD, i) for i in ids])


def cutoff() -> float:
    return time.time() - DAYS * retention.DAY


def ids(bodies) -> list[str]:
    return [orjson.loads(body)["id"] for body in bodies]


def test_old_reports_go_in_batches_and_the_device_list_stays(db):
    """7 old reports in batches of 2: four transactions; the one recent report stays; every device keeps its
    row as it was (counts of reports received, the latest, the field evaluation), pi-2's with none left."""
    one, two = reports("pi-1", 5, right=8), reports("pi-2", 3, right=6, start=1.8e9 + 100)
    store.store_posts(db, [("reports", "pi-1", one[:4]), ("reports", "pi-2", two)])
    age(db, "reports", [r["id"] for r in one[:4] + two])
    store.store_posts(db, [("reports", "pi-1", one[4:])])
    listed = store.devices(db)
    assert retention.sweep(db, cutoff(), batch=2, pause=0) == retention.Swept(reports=7, frames=0, batches=4)
    assert ids(store.device_reports(db, "pi-1")) == [one[4]["id"]]
    assert store.device_reports(db, "pi-2") == []
    assert store.devices(db) == listed
    assert [(d["device"], d["reports"], orjson.loads(d["latest"])["id"]) for d in listed] == [
        ("pi-1", 5, one[4]["id"]),
        ("pi-2", 3, two[2]["id"]),
    ]
    assert (listed[0]["field"]["accuracy"], listed[1]["field"]["accuracy"]) == (0.8, 0.6)
    assert retention.sweep(db, cutoff(), batch=2, pause=0) == retention.Swept()


def test_a_sweep_stopped_has_removed_the_oldest(db):
    """Stopped after its first batch, a sweep has removed the two that came first (not, say, the lowest ids)."""
    sent = sorted(reports("pi-1", 5), key=lambda r: r["id"], reverse=True)  # the first to come, the highest id
    for report in sent:  # one by one: each its own arrival
        store.store_posts(db, [("reports", "pi-1", [report])])
    age(db, "reports", [r["id"] for r in sent])
    stop = threading.Event()
    stop.set()
    assert retention.sweep(db, cutoff(), batch=2, stop=stop) == retention.Swept(reports=2, frames=0, batches=1)
    assert sorted(ids(store.device_reports(db, "pi-1"))) == sorted(r["id"] for r in sent[2:])


def test_labelled_frames_stay_unlabelled_old_ones_go(db, digits):
    """Old frames new and discarded go, their bytes off the device's tally (what its quota reads); the old
    labelled one and a recent new one stay."""
    scan = sorted((digits / "3").iterdir())[0]
    jpeg = cv2.imencode(".jpg", cv2.imread(str(scan)))[1].tobytes()  # a real scan, as the JPEG a device sends
    frames = [record(jpeg, "pi-1") for _ in range(4)]
    store.store_posts(db, [("frames", "pi-1", frames[:3])])
    label = [
        {"id": frames[0]["id"], "label": "3", "discard": False},
        {"id": frames[1]["id"], "label": None, "discard": True},
    ]
    store.store_posts(db, [("labels", None, label)])
    age(db, "frames", [f["id"] for f in frames[:3]])
    store.store_posts(db, [("frames", "pi-1", frames[3:])])
    assert retention.sweep(db, cutoff(), batch=1, pause=0) == retention.Swept(reports=0, frames=2, batches=2)
    kept = store.device_frames(db, "pi-1", "all")
    assert [(f["id"], f["labelled_as"]) for f in kept] == [(frames[0]["id"], "3"), (frames[3]["id"], None)]
    assert store.frame_counts(db, "pi-1") == {"new": 1, "labelled": 1, "discarded": 0, "dropped": 0, "refused": 0}
    assert db.execute("SELECT bytes FROM frame_tally WHERE device = 'pi-1'").fetchone()[0] == 2 * len(jpeg)


def test_a_report_sent_again_after_it_was_removed_is_taken_as_new_once(db):
    """An answer lost, the device away past --keep-days, then its outbox sends the report again: the host
    takes it as a new arrival (named in `ids`: the device lets it go), counts it, keeps it DAYS from now, and
    the device list's latest stays the newest; sent once more, it is held (a duplicate), not stored again."""
    sent = reports("pi-1", 3)
    store.store_posts(db, [("reports", "pi-1", sent)])
    age(db, "reports", [r["id"] for r in sent])
    assert retention.sweep(db, cutoff(), pause=0).reports == 3
    again = store.store_posts(db, [("reports", "pi-1", sent[:1])])[0]
    assert again.stored == [sent[0]["id"]]  # in the answer's ids
    [listed] = store.devices(db)
    assert (listed["reports"], orjson.loads(listed["latest"])["id"]) == (4, sent[2]["id"])
    assert retention.sweep(db, cutoff(), pause=0) == retention.Swept()
    assert ids(store.device_reports(db, "pi-1")) == [sent[0]["id"]]
    assert store.store_posts(db, [("reports", "pi-1", sent[:1])])[0].duplicates == [sent[0]["id"]]


@pytest.mark.parametrize("days", ["0", "-3", "36501"])
def test_keep_days_out_of_range_is_refused_in_one_line(days, tmp_path):
    r = edge_cli("serve", "--db", str(tmp_path / "edge.db"), "--keep-days", days)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert f"--keep-days {days}: give 1 to 36500 days" in r.stderr
    with pytest.raises(OptionError, match="give 1 to 36500 days"):
        ServeOptions(keep_days=int(days))


def test_edge_serve_keep_days_removes_what_is_old_at_start(tmp_path):
    """A real `edge serve --keep-days 30` on a store holding three reports received 40 days ago and one now:
    its sweep at start removes the three, says so in one line, and the device list still shows the device."""
    path = tmp_path / "edge.db"
    reader = token(path, "ops", "--reader")
    sent = reports("pi-1", 4)
    db = store.open_db(path)
    store.store_posts(db, [("reports", "pi-1", sent[:3])])
    age(db, "reports", [r["id"] for r in sent[:3]])
    store.store_posts(db, [("reports", "pi-1", sent[3:])])
    db.close()
    with Server(path, None, "--keep-days", str(DAYS), "--workers", "2").start() as server:
        deadline = time.monotonic() + 30
        while len(server.get("/api/v1/devices/pi-1/reports", reader)[1]["reports"]) > 1:
            assert time.monotonic() < deadline, "the sweep at start did not remove the old reports within 30 s"
            time.sleep(0.1)
        assert server.get("/api/v1/devices/pi-1/reports", reader)[1]["reports"] == sent[3:]
        [listed] = server.get("/api/v1/devices", reader)[1]["devices"]
        assert (listed["reports"], listed["latest"]) == (4, sent[3])
    logged = server.process.stderr.read().decode()
    assert logged.count("--keep-days 30: removed 3 reports and 0 unlabelled frames received before") == 1, logged
