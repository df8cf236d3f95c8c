"""`edge frames export`: labelled frames out as image folders, written whole or not at all, whatever the labels."""

import shutil

import cv2
import pytest

import edge
from edge.errors import EdgeError
from edge.frame_record import folder_name, make_record
from edge.report import new_id
from edge.server import store
from tests.cli import edge_cli
from tests.videos import read_bgr


def frame(path, device, i, labels=("0", "1", "2", "3"), frame_id=None) -> dict:
    meta = {
        "id": frame_id or new_id(),
        "device_id": device,
        "run_id": "r" * 16,
        "model_sha256": "c" * 64,
        "time": 1.8e9 + i,
        "frame": i,
        "source": "0",
        "reason": "uncertain",
        "label": labels[2],
        "top_k": [[labels[2], 0.6]],
        "scores": [0.0, 0.0, 0.6, 0.4],
        "labels": list(labels),
        "truth": None,
    }
    return make_record(cv2.imencode(".jpg", read_bgr(path))[1].tobytes(), meta)


def label(db, frames, labels) -> None:
    store.store_posts(
        db,
        [
            (
                "labels",
                None,
                [{"id": f["id"], "label": name, "discard": False} for f, name in zip(frames, labels, strict=True)],
            )
        ],
    )


@pytest.fixture
def labelled(digits, tmp_path):
    """A host database with six frames of two devices: four labelled (one a new class), one discarded, one new."""
    db_path = tmp_path / "edge.db"
    db = store.open_db(db_path)
    scans = sorted((digits / "3").iterdir())[:6]
    frames = [frame(path, "pi-door" if i < 4 else "pi-yard", i) for i, path in enumerate(scans)]
    for device in ("pi-door", "pi-yard"):
        store.store_posts(db, [("frames", device, [f for f in frames if f["device_id"] == device])])
    given = [("3", False), ("3", False), ("eight", False), (None, True), ("3", False), (None, False)]
    store.store_posts(
        db,
        [
            (
                "labels",
                None,
                [
                    {"id": f["id"], "label": label, "discard": discard}
                    for f, (label, discard) in zip(frames, given, strict=True)
                ],
            )
        ],
    )
    db.close()
    return db_path, frames


def test_export_writes_each_labelled_frame_under_its_label(labelled, tmp_path):
    db, frames = labelled
    result = edge.export_frames(db, tmp_path / "out")
    assert result["classes"] == {"3": 3, "eight": 1} and result["new_classes"] == {"eight": 1}
    assert result["devices"] == ["pi-door", "pi-yard"] and result["frames"] == 4
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*")) == sorted(
        [
            "3",
            "eight",
            f"3/{frames[0]['id']}.jpg",
            f"3/{frames[1]['id']}.jpg",
            f"3/{frames[4]['id']}.jpg",
            f"eight/{frames[2]['id']}.jpg",
        ]
    )
    only = edge.export_frames(db, tmp_path / "door", device="pi-yard")
    assert only["classes"] == {"3": 1} and only["new_classes"] == {}


def test_unlabelled_frames_go_to_the_folder_a_teacher_labels(labelled, tmp_path):
    """The new frame (neither labelled nor discarded) goes to _unlabelled/, the discarded one nowhere; a frame
    labelled "_unlabelled" by a person keeps a class folder of its own; edge convert reads it all back."""
    from edge.folders import scan

    db, frames = labelled
    label(store.open_db(db), frames[4:5], ["_unlabelled"])
    r = edge_cli("frames", "export", "--db", db, "--out", tmp_path / "out", "--unlabelled")
    assert r.returncode == 0, r.stderr
    assert f"unlabelled 1 frames no one labelled yet, in {tmp_path / 'out'}/_unlabelled/" in r.stdout
    assert "--teacher BUNDLE (it labels _unlabelled/)" in r.stdout
    found = scan(tmp_path / "out")
    assert found.classes == ["%5Funlabelled", "3", "eight"] and len(found.paths) == 4
    assert folder_name("_Unlabelled") == "%5FUnlabelled"  # the same folder as _unlabelled/ on macOS and Windows
    assert [p.name for p in found.unlabelled] == [f"{frames[5]['id']}.jpg"]
    plain = edge.export_frames(db, tmp_path / "plain")
    assert plain["unlabelled"] is None and not (tmp_path / "plain" / "_unlabelled").exists()
    only_new = edge.export_frames(db, tmp_path / "yard", device="pi-yard", unlabelled=True)
    assert (only_new["frames"], only_new["unlabelled"]) == (1, 1)


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


def test_a_label_that_names_no_folder_is_exported_under_its_escape(digits, tmp_path):
    """A model's own class holding '/', and labels an older host took (400 bytes of emoji, CON, '50%'): each in a
    folder of its own that every system can make, named in the result."""
    db = store.open_db(tmp_path / "edge.db")
    classes = ("0", "a/b", "2", "CON")
    frames = [frame(path, "pi-door", i, classes) for i, path in enumerate(sorted((digits / "1").iterdir())[:5])]
    store.store_posts(db, [("frames", "pi-door", frames)])
    labels = ["a/b", "😀" * 100, "CON", "50%", "2"]
    label(db, frames, labels)
    db.close()
    result = edge.export_frames(tmp_path / "edge.db", tmp_path / "out")
    assert result["frames"] == 5 and result["skipped"] == []
    assert result["folders"] == {"a/b": "a%2Fb", "😀" * 100: folder_name("😀" * 100), "CON": "%43ON", "50%": "50%25"}
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.jpg")) == sorted(
        f"{folder_name(name)}/{f['id']}.jpg" for f, name in zip(frames, labels, strict=True)
    )
    assert result["new_classes"] == {"😀" * 100: 1, "50%": 1}  # "a/b" and "CON" are the model's


def test_a_frame_that_cannot_be_written_is_skipped_and_named(digits, tmp_path):
    db = store.open_db(tmp_path / "edge.db")
    scans = sorted((digits / "1").iterdir())[:3]
    # an id no device may send (the host checks them), as a file name too long for any disk
    frames = [frame(scans[0], "pi-door", 0, frame_id="x" * 300), frame(scans[1], "pi-door", 1)]
    store.store_posts(db, [("frames", "pi-door", frames)])
    label(db, frames, ["2", "2"])
    db.close()
    result = edge.export_frames(tmp_path / "edge.db", tmp_path / "out")
    assert result["frames"] == 1 and result["classes"] == {"2": 1}
    assert result["skipped"] == [{"id": "x" * 300, "label": "2", "error": "File name too long"}]
    assert [p.name for p in (tmp_path / "out" / "2").iterdir()] == [f"{frames[1]['id']}.jpg"]
    label(store.open_db(tmp_path / "edge.db"), frames[1:], [None])
    with pytest.raises(EdgeError) as e:  # nothing written at all: an error, and nothing left behind
        edge.export_frames(tmp_path / "edge.db", tmp_path / "none")
    assert str(e.value) == (
        f"could not write any of the 1 frames to {tmp_path / 'none'}: frame {'x' * 300} (File name too long)"
    )
    assert not (tmp_path / "none").exists()
