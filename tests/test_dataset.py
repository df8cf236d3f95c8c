"""`edge frames export`: labelled frames out as image folders, written whole or not at all."""
import shutil

import cv2
import pytest

import edge
from edge.errors import EdgeError
from edge.frame_record import make_record
from edge.report import new_id
from edge.server import store
from tests.cli import edge_cli


@pytest.fixture
def labelled(digits, tmp_path):
    """A host database with six frames of two devices: four labelled (one a new class), one discarded, one new."""
    db_path = tmp_path / "edge.db"
    db = store.open_db(db_path)
    scans = sorted((digits / "3").iterdir())[:6]
    frames = []
    for i, path in enumerate(scans):
        meta = {"id": new_id(), "device_id": "pi-door" if i < 4 else "pi-yard", "run_id": "r" * 16,
                "model_sha256": "c" * 64, "time": 1.8e9 + i, "frame": i, "source": "0", "reason": "uncertain",
                "label": "2", "top_k": [["2", 0.6]], "scores": [0.0, 0.0, 0.6, 0.4], "labels": ["0", "1", "2", "3"],
                "truth": None}
        frames.append(make_record(cv2.imencode(".jpg", cv2.imread(str(path)))[1].tobytes(), meta))
    for device in ("pi-door", "pi-yard"):
        store.store_posts(db, [("frames", device, [f for f in frames if f["device_id"] == device])])
    given = [("3", False), ("3", False), ("eight", False), (None, True), ("3", False), (None, False)]
    store.store_posts(db, [("labels", None, [{"id": f["id"], "label": label, "discard": discard}
                                             for f, (label, discard) in zip(frames, given)])])
    db.close()
    return db_path, frames


def test_export_writes_each_labelled_frame_under_its_label(labelled, tmp_path):
    db, frames = labelled
    result = edge.export_frames(db, tmp_path / "out")
    assert result["classes"] == {"3": 3, "eight": 1} and result["new_classes"] == {"eight": 1}
    assert result["devices"] == ["pi-door", "pi-yard"] and result["frames"] == 4
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*")) == sorted(
        ["3", "eight", f"3/{frames[0]['id']}.jpg", f"3/{frames[1]['id']}.jpg", f"3/{frames[4]['id']}.jpg",
         f"eight/{frames[2]['id']}.jpg"])
    only = edge.export_frames(db, tmp_path / "door", device="pi-yard")
    assert only["classes"] == {"3": 1} and only["new_classes"] == {}


def test_export_refusals(labelled, tmp_path):
    db, _ = labelled
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("mine")
    for args, message in [
        ((tmp_path / "none.db", tmp_path / "a"), "--db "),
        ((db, tmp_path / "full"), f"--out {tmp_path / 'full'} exists and is not an empty folder"),
        ((db, tmp_path / "b", "pi-nobody"), "no labelled frames of 'pi-nobody': label collected frames"),
        ((db, tmp_path / "c", "../x"), "--device '../x': letters, digits"),
    ]:
        with pytest.raises(EdgeError) as e:
            edge.export_frames(*args)
        assert str(e.value).startswith(message)
    assert (tmp_path / "full" / "x.txt").read_text() == "mine"
    assert not [p.name for p in tmp_path.iterdir() if p.name in ("a", "b", "c") or "partial" in p.name]
    r = edge_cli("frames", "export", "--db", db)
    assert r.returncode == 2 and "Missing option '--out'" in r.stderr


def test_an_export_that_fills_the_disk_leaves_nothing(labelled, small_disk):
    db, _ = labelled
    (small_disk / "filler").write_bytes(b"\0" * (shutil.disk_usage(small_disk).free - 2_000))
    with pytest.raises(EdgeError) as e:
        edge.export_frames(db, small_disk / "out")
    assert str(e.value).startswith(f"cannot write the export to {small_disk / 'out'} (No space left on device)")
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler"]
