"""What collected frames may take of the host: a quota a device and one for all, the oldest unlabelled frames
dropped first and counted, and a reserve of free disk only reports may use, so one device's frames never
cost anyone's reports. Real sqlite files, a real 4 MB file system to fill and the real `edge serve`."""

import asyncio
import multiprocessing
import shutil

import cv2
import orjson
import pytest

from edge.report import make_report
from edge.server import schema, store
from edge.server.writer import Writer
from tests.reports import window_summary
from tests.server import Server, token
from tests.test_server_frames import record

LABELS = ["0", "1", "2", "3"]


@pytest.fixture(scope="module")
def scan(digits):
    """A real scan of a 2 as a JPEG, at 160x160 (some 5 KB): every frame here is this size."""
    picture = cv2.resize(cv2.imread(str(next((digits / "2").iterdir()))), (160, 160))
    return cv2.imencode(".jpg", picture)[1].tobytes()


def reports(device: str, n: int) -> list[dict]:
    summary = window_summary(LABELS, [(2, 2), (2, 3), (1, 1)])
    return [
        orjson.loads(
            orjson.dumps(
                make_report(summary, device, "r" * 32, seq, "b" * 64, 1.8e9 + seq, 1.8e9 + seq + 1),
                option=orjson.OPT_SERIALIZE_NUMPY,
            )
        )
        for seq in range(n)
    ]  # as the host reads them


def held(db, device: str) -> list[str]:
    return [f["id"] for f in store.device_frames(db, device, "all", 1000)]


def label(db, frame_id: str, label=None, discard=False) -> None:
    store.store_posts(db, [("labels", None, [{"id": frame_id, "label": label, "discard": discard}])])


def test_a_device_over_its_quota_drops_its_oldest_unlabelled_frames_discarded_first(new_db, scan):
    db = store.open_db(new_db())
    quota = store.FrameQuota(device=5 * len(scan), total=100 * len(scan))
    writer = Writer(db, multiprocessing.RawValue("b", 0), quota=quota)  # as a worker of edge serve stores
    door = [record(scan, "pi-door") for _ in range(4)]
    assert asyncio.run(writer.store("frames", "pi-door", door)).stored == [f["id"] for f in door]
    label(db, door[0]["id"], "2")
    label(db, door[2]["id"], discard=True)
    later = [record(scan, "pi-door") for _ in range(3)]  # room for 1: 2 must go
    assert asyncio.run(writer.store("frames", "pi-door", later)).stored == [f["id"] for f in later]
    assert held(db, "pi-door") == [door[0]["id"], door[3]["id"]] + [f["id"] for f in later]
    assert store.frame_counts(db, "pi-door") == {"new": 4, "labelled": 1, "discarded": 0, "dropped": 2, "refused": 0}
    store.store_posts(db, [("frames", "pi-yard", [record(scan, "pi-yard")])], quota)  # another device's own room
    assert len(held(db, "pi-door")) == 5 and len(held(db, "pi-yard")) == 1


def test_over_the_quota_for_all_the_largest_holder_gives_first(new_db, scan):
    db = store.open_db(new_db())
    quota = store.FrameQuota(device=4 * len(scan), total=5 * len(scan))
    door, yard = [record(scan, "pi-door") for _ in range(4)], [record(scan, "pi-yard") for _ in range(2)]
    store.store_posts(db, [("frames", "pi-door", door), ("frames", "pi-yard", yard)], quota)
    assert held(db, "pi-door") == [f["id"] for f in door[1:]] and held(db, "pi-yard") == [f["id"] for f in yard]
    assert store.frame_counts(db, "pi-door")["dropped"] == 1 and store.frame_counts(db, "pi-yard")["dropped"] == 0


def test_a_frame_with_no_room_is_not_taken_and_counted(new_db, scan, digits):
    """A quota full of labelled frames (a person's work, never dropped), or a frame bigger than the quota: the
    frame is not among the ids the host holds, so the device keeps it and tries again later, and no frame is
    dropped for it."""
    db = store.open_db(new_db())
    quota = store.FrameQuota(device=2 * len(scan), total=100 * len(scan))
    two = [record(scan, "pi-door") for _ in range(2)]
    store.store_posts(db, [("frames", "pi-door", two)], quota)
    for f in two:
        label(db, f["id"], "2")
    late = record(scan, "pi-door")
    [outcome] = store.store_posts(db, [("frames", "pi-door", [late])], quota)
    assert (outcome.stored, outcome.duplicates, outcome.conflicts) == ([], [], [])
    tiny = store.FrameQuota(device=len(scan) - 1, total=100 * len(scan))
    assert store.store_posts(db, [("frames", "pi-yard", [record(scan, "pi-yard")])], tiny)[0].stored == []
    assert held(db, "pi-door") == [f["id"] for f in two] and held(db, "pi-yard") == []
    assert store.frame_counts(db, "pi-door")["refused"] == store.frame_counts(db, "pi-yard")["refused"] == 1
    big = cv2.imencode(".jpg", cv2.resize(cv2.imread(str(next((digits / "2").iterdir()))), (320, 320)))[1].tobytes()
    kept = [record(scan, "pi-gate") for _ in range(2)]
    store.store_posts(db, [("frames", "pi-gate", kept)], quota)
    label(db, kept[0]["id"], "2")
    # dropping the one new frame frees one byte too few for the big one
    short = store.FrameQuota(device=len(scan) + len(big) - 1, total=100 * len(scan))
    assert store.store_posts(db, [("frames", "pi-gate", [record(big, "pi-gate")])], short)[0].stored == []
    assert held(db, "pi-gate") == [f["id"] for f in kept]
    assert store.frame_counts(db, "pi-gate") == {"new": 1, "labelled": 1, "discarded": 0, "dropped": 0, "refused": 1}


def test_frames_stop_short_of_the_reserve_and_reports_go_on(small_disk, digits):
    """A device's frames fill a 4 MB disk to the 1 MB reserve, and no further; reports are then stored until the
    disk is full."""
    db = store.open_db(small_disk / "edge.db")
    quota = store.FrameQuota(reserve=1 << 20)
    big = cv2.imencode(".jpg", cv2.resize(cv2.imread(str(next((digits / "3").iterdir()))), (640, 480)))[1].tobytes()
    taken = 0
    for _ in range(200):
        [outcome] = store.store_posts(db, [("frames", "pi-door", [record(big, "pi-door") for _ in range(4)])], quota)
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        taken += len(outcome.stored)
        if len(outcome.stored) < 4:
            break
    assert taken > 10 and store.frame_counts(db, "pi-door")["refused"] >= 1
    assert shutil.disk_usage(small_disk).free >= (1 << 20) - 2 * len(big)
    for _ in range(10):  # some 300 KB of reports: in the reserve
        assert len(store.store_posts(db, [("reports", "pi-door", reports("pi-door", 50))])[0].stored) == 50


def test_edge_serve_keeps_reports_ahead_of_frames(small_disk, scan):
    """On a disk with less free than the reserve, the real server takes a device's reports but not its frames
    (200, the frames not among the ids: the device keeps them), and says so in the device's frames read."""
    db = small_disk / "edge.db"
    secret = token(db, "pi-door")
    server = Server(db, None, "--workers", "1").start()
    try:
        frames = [record(scan, "pi-door") for _ in range(2)]
        assert server.request("POST", "/api/v1/frames", {"frames": frames}, secret) == (
            200,
            {"stored": 0, "duplicates": 0, "conflicts": [], "ids": []},
        )
        code, answer = server.post(reports("pi-door", 20), secret)
        assert code == 200 and answer["stored"] == 20
        assert server.get("/api/v1/devices/pi-door/frames")[1]["counts"] == {
            "new": 0,
            "labelled": 0,
            "discarded": 0,
            "dropped": 0,
            "refused": 2,
        }
    finally:
        server.stop()


def test_a_version_3_store_s_frames_count_against_the_quota(tmp_path, scan):
    path = tmp_path / "edge.db"
    db = store.open_db(path)
    door = [record(scan, "pi-door") for _ in range(3)]
    store.store_posts(db, [("frames", "pi-door", door)])
    db.execute("DROP TABLE frame_tally")  # as an edge that kept no tally left it
    db.execute("PRAGMA user_version = 3")
    db.close()
    db = store.open_db(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == schema.VERSION == 7
    store.store_posts(db, [("frames", "pi-door", [record(scan, "pi-door")])], store.FrameQuota(device=3 * len(scan)))
    assert held(db, "pi-door")[0] == door[1]["id"] and store.frame_counts(db, "pi-door")["dropped"] == 1
