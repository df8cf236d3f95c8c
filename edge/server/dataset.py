"""The frames labelled on the dashboard, out as an image-folder data set: OUT/<label>/<frame id>.jpg, the
JPEG as the device sent it. `edge convert --data ORIGINAL --data OUT` trains on both, classes merged by
name; a label the model did not know starts a new class, and the export names those.

A label that is no folder's name on every system (a model's own class such as "a/b", or a label an older
host took) is written into the folder `edge.frame_record.folder_name` gives it (percent-encoded, "a%2Fb"),
one no other label has; the result names each (`folders`). A frame that still cannot be written is passed
over and named (`skipped`): one frame never stops the others.

With `unlabelled`, the frames no one labelled or discarded yet go to OUT/_unlabelled/ (edge.frame_record.UNLABELLED),
where `edge convert --teacher` has a teacher label them; a label of that very name gets a folder of its own.

The folder is written beside OUT under a hidden name and renamed into place when whole: an export that
fails (a full disk) leaves nothing half-written.
"""

import errno
import os
import shutil
from pathlib import Path

from edge.errors import EdgeError
from edge.frame_record import UNLABELLED, folder_name
from edge.report import check_name
from edge.server import store
from edge.server.database import is_url


def export_frames(db_path, out, device: str | None = None, unlabelled: bool = False) -> dict:
    """Write every labelled frame (or `device`'s) under `out`, and with `unlabelled` the new ones; returns what
    was written."""
    out = Path(out)
    if not is_url(db_path) and not Path(db_path).is_file():
        raise EdgeError(f"--db {db_path}: no such database; give the file edge serve stores into")
    if device is not None:
        check_name(device, "--device")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise EdgeError(
            f"--out {out} exists and is not an empty folder: give a new one (an export is written whole, "
            "never mixed into another)"
        )
    db = store.open_db(db_path)  # checks (and upgrades) the store's version
    partial = out.parent / f".{out.name}.partial-{os.getpid()}"
    counts: dict[str, int] = {}
    new: dict[str, int] = {}
    devices, models, folders = set(), set(), {}
    skipped: list[dict] = []
    try:
        partial.mkdir(parents=True)
        for frame_id, name, label, meta, jpeg in store.frame_files(db, device):
            folder = folder_name(label)
            if not _write(partial / folder, frame_id, jpeg, label, skipped):
                continue
            if folder != label:
                folders[label] = folder
            counts[label] = counts.get(label, 0) + 1
            if label not in meta["labels"]:
                new[label] = new.get(label, 0) + 1
            devices.add(name)
            models.add(meta["model_sha256"])
        new_frames = 0
        for frame_id, name, _, _, jpeg in store.frame_files(db, device, "new") if unlabelled else ():
            if _write(partial / UNLABELLED, frame_id, jpeg, None, skipped):
                new_frames += 1
                devices.add(name)
        if skipped and not counts and not new_frames:
            raise EdgeError(
                f"could not write any of the {len(skipped)} frames to {out}: frame "
                f"{skipped[0]['id']} ({skipped[0]['error']})"
            )
        if not counts and not new_frames:
            of = f" of '{device}'" if device else ""
            raise EdgeError(
                f"no {'labelled or new ' if unlabelled else 'labelled '}frames{of}: label collected frames on the "
                "dashboard first (edge run --collect sends them)"
            )
        if out.exists():
            out.rmdir()
        partial.rename(out)
    except OSError as e:
        raise EdgeError(
            f"cannot write the export to {out} ({e.strerror or e}): free some space or give another --out"
        ) from None
    finally:
        db.close()
        shutil.rmtree(partial, ignore_errors=True)
    return {
        "out": str(out),
        "frames": sum(counts.values()),
        "unlabelled": new_frames if unlabelled else None,
        "classes": dict(sorted(counts.items())),
        "new_classes": dict(sorted(new.items())),
        "devices": sorted(devices),
        "models": sorted(models),
        "folders": folders,
        "skipped": skipped,
    }


def _write(folder: Path, frame_id: str, jpeg: bytes, label: str | None, skipped: list) -> bool:
    """One frame's JPEG into `folder`; a frame that cannot be written is listed in `skipped` (a full disk stops
    the export)."""
    try:
        folder.mkdir(exist_ok=True)
        (folder / f"{frame_id}.jpg").write_bytes(jpeg)
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):  # the disk, not this frame: no export
            raise
        skipped.append({"id": frame_id, "label": label, "error": e.strerror or str(e)})
        return False
    return True
