"""The frames labelled on the dashboard, out as an image-folder data set: OUT/<label>/<frame id>.jpg, the
JPEG as the device sent it. `edge convert --data ORIGINAL --data OUT` trains on both, classes merged by
name; a label the model did not know starts a new class, and the export names those.

The folder is written beside OUT under a hidden name and renamed into place when whole: an export that
fails (a full disk) leaves nothing half-written.
"""
import os
import shutil
from pathlib import Path

from edge.errors import EdgeError
from edge.report import check_name
from edge.server import store


def export_frames(db_path, out, device: str | None = None) -> dict:
    """Write every labelled frame (or `device`'s) under `out`; returns what was written."""
    db_path, out = Path(db_path), Path(out)
    if not db_path.is_file():
        raise EdgeError(f"--db {db_path}: no such database; give the file edge serve stores into")
    if device is not None:
        check_name(device, "--device")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise EdgeError(f"--out {out} exists and is not an empty folder: give a new one (an export is written whole, "
                        "never mixed into another)")
    db = store.open_db(db_path)  # checks (and upgrades) the store's version
    partial = out.parent / f".{out.name}.partial-{os.getpid()}"
    counts, new, devices, models = {}, {}, set(), set()
    try:
        for frame_id, name, label, meta, jpeg in store.labelled_frames(db, device):
            folder = partial / label
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{frame_id}.jpg").write_bytes(jpeg)
            counts[label] = counts.get(label, 0) + 1
            if label not in meta["labels"]:
                new[label] = new.get(label, 0) + 1
            devices.add(name)
            models.add(meta["model_sha256"])
        if not counts:
            of = f" of '{device}'" if device else ""
            raise EdgeError(f"no labelled frames{of}: label collected frames on the dashboard first (edge run "
                            "--collect sends them)")
        if out.exists():
            out.rmdir()
        partial.rename(out)
    except OSError as e:
        raise EdgeError(f"cannot write the export to {out} ({e.strerror or e}): free some space or give another "
                        "--out") from None
    finally:
        db.close()
        shutil.rmtree(partial, ignore_errors=True)
    return {"out": str(out), "frames": sum(counts.values()), "classes": dict(sorted(counts.items())),
            "new_classes": dict(sorted(new.items())), "devices": sorted(devices), "models": sorted(models)}
