"""Tokens and reports in SQLite (WAL: the dashboard reads while devices write).

Tokens are random (32 bytes), shown once, stored as SHA-256 hashes: a stolen database lets no one in.
A device token writes only its own device's reports; a reader token only reads. Each report is stored
once by its id, so a device may retry a batch as often as it likes; an id sent again with other content
is a conflict: the first is kept and the conflict counted.

What the reads need (each device's latest report, its counts, the confusion matrix of its latest field
evaluation) is kept up to date in `devices` as reports arrive, in the transaction that stores them, so a
read costs the number of devices, not of reports. The database is the only state: any number of server
processes write and read it, SQLite's write lock putting their transactions in order.

Collected frames are bounded (`FrameQuota`): one device's JPEGs, all devices', and a reserve of free disk
only reports may use, so a device sending frames never costs anyone's reports. Over a quota, the oldest
unlabelled frames go first (the discarded, then the new; a labelled frame is a person's work and stays),
a device's own when it is over its quota, the largest holder's when all are over theirs; a frame with no
room left is not taken: the device keeps it and tries again. Both are counted a device (`frame_counts`).
"""

import hashlib
import hmac
import json
import secrets
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from edge.errors import EdgeError
from edge.files import check_writable
from edge.frame_record import jpeg_bytes
from edge.report import cells, check_name
from edge.server import database, schema, vitals
from edge.server.database import transaction

ROLES = ("device", "reader", "publisher")
DEVICE_FRAMES = 1 << 30  # bytes of JPEG one device's collected frames may hold
ALL_FRAMES = 8 << 30  # bytes of JPEG all collected frames may hold
FRAME_RESERVE = 256 << 20  # bytes of free disk frames leave to reports

DEVICE_COLUMNS = (
    "device",
    "last_seen",
    "reports",
    "conflicts",
    "latest_end",
    "latest",
    "field_run",
    "field_end",
    "field_reports",
    "field_labels",
    "field_cells",
    "vitals",
)
SAVE_DEVICE = (
    f"INSERT INTO devices ({', '.join(DEVICE_COLUMNS)}) VALUES ({', '.join('?' * len(DEVICE_COLUMNS))}) "
    "ON CONFLICT (device) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in DEVICE_COLUMNS[1:])
)


@dataclass(frozen=True)
class FrameQuota:
    """Bytes of JPEG a device's frames and all frames may hold, and free bytes of disk left to reports."""

    device: int = DEVICE_FRAMES
    total: int = ALL_FRAMES
    reserve: int = FRAME_RESERVE


def open_db(path):
    """The store, created if new: a SQLite file, or a PostgreSQL database (a postgresql:// URL). One connection
    per thread (sqlite3's rule)."""
    if database.is_url(path):
        pg = database.connect(str(path))
        try:
            schema.migrate_postgres(pg, str(path))
        except BaseException:
            pg.close()
            raise
        return pg
    path = check_writable(path, "--db")
    try:
        db = _connect(path)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a committed report survives a process crash
        schema.migrate(db, str(path))
    except EdgeError:
        db.close()
        raise
    except sqlite3.DatabaseError as e:
        raise EdgeError(f"--db {path} is not an edge database ({e}): give another file") from None
    return db


def open_reader(path):
    """A connection that only reads, to a store `open_db` has opened: it neither writes the schema nor waits
    for the writer (in WAL, readers see the last commit and never block it; PostgreSQL's readers never wait)."""
    if database.is_url(path):
        return database.Postgres(str(path))
    db = _connect(path)
    db.execute("PRAGMA query_only = ON")
    return db


def _connect(path) -> sqlite3.Connection:
    return sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def create_token(db, name: str, role: str = "device") -> str:
    """A new token for `name`; the only time it is ever shown."""
    check_name(name, "name")
    if role not in ROLES:
        raise EdgeError(f"unknown role '{role}': choose one of {', '.join(ROLES)}")
    token = secrets.token_urlsafe(32)
    try:
        db.execute(
            "INSERT INTO tokens (name, role, hash, created) VALUES (?, ?, ?, ?)",
            (name, role, hash_token(token), time.time()),
        )
    except database.IntegrityError:
        raise EdgeError(f"'{name}' already has a token: revoke it first (edge token revoke {name})") from None
    return token


def revoke_token(db, name: str) -> None:
    if db.execute("DELETE FROM tokens WHERE name = ?", (name,)).rowcount == 0:
        raise EdgeError(f"'{name}' has no token; list them with 'edge token list'")


def list_tokens(db) -> list[dict]:
    rows = db.execute("SELECT name, role, created FROM tokens ORDER BY name").fetchall()
    return [{"name": n, "role": r, "created": c} for n, r, c in rows]


def who(db, token: str) -> tuple[str, str] | None:
    """(name, role) of a token, or None. Looked up by hash, then compared in constant time."""
    digest = hash_token(token)
    row = db.execute("SELECT name, role, hash FROM tokens WHERE hash = ?", (digest,)).fetchone()
    if row is None or not hmac.compare_digest(row[2], digest):
        return None
    return row[0], row[1]


@dataclass
class Stored:
    """What became of a batch: ids stored now, ids held already with the same content, and ids held already
    with other content (or for another device): conflicts, of which the first is kept."""

    stored: list
    duplicates: list
    conflicts: list


def store_posts(db, posts: list[tuple[str, str | None, list[dict]]], quota: FrameQuota = FrameQuota()) -> list[Stored]:
    """Store what POSTs brought, [(kind, device, checked items)], kind "reports", "frames" (within `quota`) or
    "labels" (for frames, as `label_frames` takes them), folding reports into what the reads need (each
    device's row of `devices`, read under the write lock: whatever process wrote it last), all in one
    transaction: a group commit, one write to disk for every POST that came in meanwhile. Raises an error that
    database.busy knows at once, having done nothing, while another connection writes, if `db` does not wait.
    Any other kind is the caller's mistake: ValueError, and nothing is stored."""
    now = time.time()
    changed: dict[str, _Summary] = {}  # device -> its row of `devices`, as this group's reports change it
    kinds = {
        "reports": lambda device, items: _store_reports(db, device, items, now, changed),
        "frames": lambda device, items: _store_frames(db, device, items, now, quota),
        "labels": lambda device, items: _label_frames(db, device, items, now),
    }
    unknown = next((kind for kind, _, _ in posts if kind not in kinds), None)
    if unknown is not None:
        raise ValueError(f"store_posts: no kind {unknown!r}; the kinds are {', '.join(kinds)}")
    with transaction(db):
        # a device's row is read, changed and written whole; frames are held to quotas over every device
        database.lock(
            db,
            *(f"device:{device}" for kind, device, _ in posts if kind == "reports"),
            *(["frames"] if any(kind != "reports" for kind, _, _ in posts) else []),
        )
        outcomes = [kinds[kind](device, items) for kind, device, items in posts]
        for device, summary in changed.items():
            if summary.reports:  # a device is listed once it has a report stored
                summary.save(db, device)
    return outcomes


def _store_reports(db, device: str, reports: list[dict], now: float, changed: dict) -> Stored:
    """Reports, each kept once by its id, folded into `device`'s row of `devices` in `changed`. One statement
    inserts them all, one reads those held already: two round trips to a database server, not one a report."""
    summary = changed.get(device) or _summary(db, device)
    bodies = [orjson.dumps(r).decode() for r in reports]
    rows = [
        (r["id"], device, r["run_id"], now, r["window"]["start"], r["window"]["end"], r["evaluated"], body)
        for r, body in zip(reports, bodies, strict=True)
    ]
    new = {
        found
        for (found,) in db.execute(
            "INSERT INTO reports (id, device, run, received, window_start, window_end, evaluated, body) VALUES "
            + ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?)"] * len(rows))
            + " ON CONFLICT (id) DO NOTHING RETURNING id",
            [value for row in rows for value in row],
        )
    }
    outcome = Stored([], [], [])
    again = []  # (report, body) whose id was held already: by an earlier POST, or earlier in this one
    for r, body in zip(reports, bodies, strict=True):
        if r["id"] in new:
            new.discard(r["id"])
            outcome.stored.append(r["id"])
            summary.add(r, body, now)
        else:
            again.append((r, body))
    if again:
        ids = [r["id"] for r, _ in again]
        held = {
            found: (held_device, held_body)
            for found, held_device, held_body in db.execute(
                f"SELECT id, device, body FROM reports WHERE id IN ({', '.join('?' * len(ids))})", ids
            )
        }
        for r, body in again:
            (outcome.duplicates if _same(held[r["id"]], device, body, r) else outcome.conflicts).append(r["id"])
    summary.conflicts += len(outcome.conflicts)
    changed[device] = summary
    return outcome


def _store_frames(db, device: str, records: list[dict], now: float, quota: FrameQuota) -> Stored:
    """Collected frames (edge.frame_record), each kept once by its id: the JPEG as bytes, the rest as JSON.
    A frame with no room within `quota` is none of stored, duplicate or conflict."""
    outcome = Stored([], [], [])
    free = None  # of the disk, read once a POST
    for r in records:
        jpeg, meta = jpeg_bytes(r), orjson.dumps({k: v for k, v in r.items() if k != "jpeg"}).decode()
        found = db.execute(
            "SELECT device = ? AND meta = ? AND jpeg = ? FROM frames WHERE id = ?", (device, meta, jpeg, r["id"])
        ).fetchone()
        if found:
            (outcome.duplicates if found[0] else outcome.conflicts).append(r["id"])
            continue
        free = _free_bytes(db) if free is None else free
        free -= 2 * len(jpeg)  # into the log, then into the database
        if free < quota.reserve or not _room(db, device, len(jpeg), quota):
            _count(db, device, 0, refused=1)
            continue
        db.execute(
            "INSERT INTO frames (id, device, received, meta, jpeg) VALUES (?, ?, ?, ?, ?)",
            (r["id"], device, now, meta, jpeg),
        )
        _count(db, device, len(jpeg))
        outcome.stored.append(r["id"])
    return outcome


def _free_bytes(db) -> float:
    """Free bytes on the store's disk: a SQLite file's; PostgreSQL's disk is its server's (a full one is refused
    by the database, 503)."""
    if isinstance(db, database.Postgres):
        return float("inf")
    return shutil.disk_usage(Path(db.execute("PRAGMA database_list").fetchone()[2]).parent).free


def _room(db, device: str, size: int, quota: FrameQuota) -> bool:
    """Whether `device`'s frame of `size` bytes fits the quota, once the oldest unlabelled frames are dropped:
    the device's own over its quota, the largest holders' over the quota for all. Nothing is dropped for a
    frame that does not fit even then."""
    mine = _held(db, device) + size - quota.device
    over_all = db.execute("SELECT COALESCE(SUM(bytes), 0) FROM frame_tally").fetchone()[0] + size - quota.total
    if mine <= 0 and over_all <= 0:
        return True
    if size > quota.device or size > quota.total:
        return False
    db.execute("SAVEPOINT room")
    freed = _drop(db, device, mine) if mine > 0 else 0
    over = max(mine - freed, over_all - freed)
    if mine - freed <= 0 and over > 0:
        for (holder,) in db.execute("SELECT device FROM frame_tally ORDER BY bytes DESC").fetchall():
            over -= _drop(db, holder, over)
            if over <= 0:
                break
    if over > 0:
        db.execute("ROLLBACK TO room")  # what it dropped is kept
    db.execute("RELEASE room")
    return over <= 0


def _held(db, device: str) -> int:
    row = db.execute("SELECT bytes FROM frame_tally WHERE device = ?", (device,)).fetchone()
    return row[0] if row else 0


def _drop(db, device: str, need: int) -> int:
    """Drop `device`'s oldest unlabelled frames, the discarded first, until `need` bytes are freed: the bytes
    freed, fewer if it has no more."""
    gone, freed = [], 0
    rows = db.execute(
        "SELECT rowid, length(jpeg) FROM frames WHERE device = ? AND label IS NULL ORDER BY discarded DESC, rowid",
        (device,),
    )
    for rowid, size in rows:
        if freed >= need:
            break
        gone.append((rowid,))
        freed += size
    rows.close()
    db.executemany("DELETE FROM frames WHERE rowid = ?", gone)
    _count(db, device, -freed, dropped=len(gone))
    return freed


def _count(db, device: str, size: int, dropped: int = 0, refused: int = 0) -> None:
    db.execute(
        "INSERT INTO frame_tally (device, bytes, dropped, refused) VALUES (?, ?, ?, ?) ON CONFLICT (device) "
        "DO UPDATE SET bytes = frame_tally.bytes + excluded.bytes, dropped = frame_tally.dropped + "
        "excluded.dropped, refused = frame_tally.refused + excluded.refused",
        (device, size, dropped, refused),
    )


@dataclass
class _Summary:
    """A row of `devices`. The field evaluation is the latest run with ground truth: its reports' confusion
    cells summed (Python ints: no sum overflows), {(truth, predicted): count}, kept flat like a report's."""

    last_seen: float = 0.0
    reports: int = 0
    conflicts: int = 0
    latest_end: float = float("-inf")
    latest: str = ""
    field_run: str | None = None
    field_end: float | None = None
    field_reports: int = 0
    field_labels: list | None = None
    field_cells: dict | None = None
    labels_text: str | None = None  # field_labels as stored: written again only when they change
    vitals: str | None = None  # the latest report's figures the host watches (edge.server.vitals), as JSON

    def add(self, report: dict, body: str, now: float) -> None:
        self.last_seen, self.reports = now, self.reports + 1
        end = report["window"]["end"]
        if end >= self.latest_end:
            self.latest_end, self.latest = end, body
            self.vitals = orjson.dumps(vitals.from_report(report)).decode()
        if not report["evaluated"]:
            return
        if report["run_id"] != self.field_run:
            if self.field_end is not None and end <= self.field_end:
                return  # a late report of an earlier run
            self.field_run, self.field_end, self.field_reports = report["run_id"], end, 0
            self.field_labels, self.field_cells, self.labels_text = report["labels"], {}, None
        elif report["labels"] != self.field_labels:
            return  # one run, one model: always so for reports edge run writes
        self.field_end, self.field_reports = max(self.field_end, end), self.field_reports + 1
        field = self.field_cells
        assert field is not None  # a field run's cells start with it
        for truth, predicted, count in cells(report["confusion"]):
            key = (truth, predicted)
            field[key] = field.get(key, 0) + count

    def save(self, db, device: str) -> None:
        self.labels_text = self.labels_text or _json(self.field_labels)
        db.execute(
            SAVE_DEVICE,
            (
                device,
                self.last_seen,
                self.reports,
                self.conflicts,
                self.latest_end,
                self.latest,
                self.field_run,
                self.field_end,
                self.field_reports,
                self.labels_text,
                _json(
                    self.field_cells
                    and [x for (truth, predicted), count in self.field_cells.items() for x in (truth, predicted, count)]
                ),
                self.vitals,
            ),
        )


def _same(held: tuple, device: str, body: str, report: dict) -> bool:
    """Whether the report held is this one: the same text, or, as written by another version of the host
    (another JSON writer), the same content."""
    return held[0] == device and (held[1] == body or json.loads(held[1]) == report)


def _json(value) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


_COLUMNS = ", ".join(DEVICE_COLUMNS[1:])


def _from_row(row) -> _Summary:
    last_seen, reports, conflicts, latest_end, latest, field_run, field_end, field_reports, labels, flat, kept = row
    return _Summary(
        last_seen,
        reports,
        conflicts,
        latest_end,
        latest,
        field_run,
        field_end,
        field_reports,
        orjson.loads(labels) if labels else None,
        {cell[:2]: cell[2] for cell in cells(orjson.loads(flat))} if flat else None,
        labels,
        kept,
    )


def _summary(db, device: str) -> _Summary:
    row = db.execute(f"SELECT {_COLUMNS} FROM devices WHERE device = ?", (device,)).fetchone()
    return _Summary() if row is None else _from_row(row)


def reported(db, device: str) -> bool:
    """Whether `device` has a report stored."""
    return db.execute("SELECT 1 FROM devices WHERE device = ?", (device,)).fetchone() is not None


def devices(db, only: str | None = None) -> list[dict]:
    """Every device that has reported (or just `only`), by name: its latest report (JSON text, as stored),
    counts, vitals (edge.server.vitals), and where its latest field evaluation stands, {"run_id", "reports",
    "n", "accuracy"}: what the device list shows, whatever the number of classes."""
    found = []
    for device, last_seen, count, conflicts, latest, run, run_reports, flat, kept in db.execute(
        "SELECT device, last_seen, reports, conflicts, latest, field_run, field_reports, field_cells, vitals "
        "FROM devices WHERE CAST(? AS TEXT) IS NULL OR device = ? ORDER BY device",
        (only, only),
    ):
        field = None
        if run is not None:
            flat = orjson.loads(flat)
            n, right = sum(flat[2::3]), sum(c for truth, predicted, c in cells(flat) if truth == predicted)
            field = {"run_id": run, "reports": run_reports, "n": n, "accuracy": right / n if n else 0.0}
        found.append(
            {
                "device": device,
                "last_seen": last_seen,
                "reports": count,
                "conflicts": conflicts,
                "vitals": orjson.loads(kept) if kept else None,
                "latest": latest,
                "field": field,
            }
        )
    return found


def watched(db) -> list[tuple[str, float, int, str | None]]:
    """(device, last_seen, reports, vitals as JSON) of every device: what watching them needs (edge.server.alerts,
    edge.server.metrics), never their latest report."""
    return db.execute("SELECT device, last_seen, reports, vitals FROM devices ORDER BY device").fetchall()


def size_bytes(db) -> int:
    """Bytes the store holds on disk: a PostgreSQL database's, or a SQLite file's with its log."""
    if isinstance(db, database.Postgres):
        return db.execute("SELECT pg_database_size(current_database())").fetchone()[0]
    path = Path(db.execute("PRAGMA database_list").fetchone()[2])
    return sum(f.stat().st_size for f in (path, path.with_name(path.name + "-wal")) if f.exists())


def field(db, device: str) -> dict | None:
    """A device's latest field evaluation, {"run_id", "reports", "labels", "cells": {(truth, predicted): count}},
    or None."""
    s = _summary(db, device)
    return (
        None
        if s.field_run is None
        else {"run_id": s.field_run, "reports": s.field_reports, "labels": s.field_labels, "cells": s.field_cells}
    )


def device_reports(db, device: str, limit: int = 500, since: float | None = None) -> list[str]:
    """A device's reports as stored (JSON text), oldest first: the newest `limit` of them, or those ending
    after `since`."""
    rows = db.execute(
        """
        SELECT body FROM (SELECT body, window_end FROM reports WHERE device = ? AND window_end > ?
                          ORDER BY window_end DESC LIMIT ?) AS newest ORDER BY window_end""",
        (device, since if since is not None else float("-inf"), limit),
    ).fetchall()
    return [body for (body,) in rows]


def all_reports(db, only: str | None = None):
    """Every report (or `only` that device's) in the order they arrived, for the CSV export (streamed: the
    table may be large)."""
    for device, received, body in database.stream(
        db,
        "SELECT device, received, body FROM reports WHERE CAST(? AS TEXT) IS NULL OR device = ? ORDER BY rowid",
        (only, only),
    ):
        yield device, received, json.loads(body)


FRAME_STATES = {  # which frames a listing holds
    "new": "label IS NULL AND NOT discarded",
    "labelled": "label IS NOT NULL",
    "discarded": "discarded",
    "all": "TRUE",
}


def _label_frames(db, device, labels: list[dict], now: float) -> Stored:
    """Give frames a label, or discard them: [{"id", "label": text or None, "discard": bool}] (checked).
    A label clears a discard and a discard a label; both None/False put a frame back among the new. An id
    not held is a conflict."""
    outcome = Stored([], [], [])
    for given in labels:
        label, discard = given["label"], given["discard"]
        if db.execute(
            "UPDATE frames SET label = ?, labelled = ?, discarded = ? WHERE id = ?",
            (None if discard else label, now if label or discard else None, bool(discard), given["id"]),
        ).rowcount:
            outcome.stored.append(given["id"])
        else:
            outcome.conflicts.append(given["id"])
    return outcome


def frame_counts(db, device: str) -> dict:
    """How many of a device's frames are new, labelled and discarded, how many were dropped for newer ones
    (`FrameQuota`), and how many times one was refused for want of room."""
    counts = {
        state: db.execute(f"SELECT COUNT(*) FROM frames WHERE device = ? AND {where}", (device,)).fetchone()[0]
        for state, where in FRAME_STATES.items()
        if state != "all"
    }
    row = db.execute("SELECT dropped, refused FROM frame_tally WHERE device = ?", (device,)).fetchone()
    return {**counts, "dropped": row[0] if row else 0, "refused": row[1] if row else 0}


def device_frames(db, device: str, state: str = "new", limit: int = 100) -> list[dict]:
    """A device's collected frames in `state` (FRAME_STATES), in the order they came: what the device sent but the
    JPEG, with when it came and what a person made of it (`labelled_as`, `discarded`)."""
    rows = db.execute(
        f"SELECT received, label, discarded, meta FROM frames WHERE device = ? AND "
        f"{FRAME_STATES[state]} ORDER BY rowid LIMIT ?",
        (device, limit),
    )
    return [
        {**json.loads(meta), "received": received, "labelled_as": label, "discarded": bool(discarded)}
        for received, label, discarded, meta in rows
    ]


def frame_classes(db, frame_id: str) -> list[str]:
    """The classes of the model that chose a frame (none for a frame not held)."""
    row = db.execute("SELECT meta FROM frames WHERE id = ?", (frame_id,)).fetchone()
    return json.loads(row[0])["labels"] if row else []


def frame_jpeg(db, frame_id: str) -> tuple[str, bytes] | None:
    """(device, JPEG) of a frame, or None."""
    return db.execute("SELECT device, jpeg FROM frames WHERE id = ?", (frame_id,)).fetchone()


def frame_files(db, device: str | None = None, state: str = "labelled"):
    """(id, device, label, meta, JPEG) of every frame in `state` (FRAME_STATES: "labelled", or "new", neither
    labelled nor discarded, label None), or `device`'s, in the order they came."""
    for frame_id, name, label, meta, jpeg in database.stream(
        db,
        f"SELECT id, device, label, meta, jpeg FROM frames WHERE {FRAME_STATES[state]} AND (CAST(? AS TEXT) IS NULL "
        "OR device = ?) ORDER BY rowid",
        (device, device),
    ):
        yield frame_id, name, label, json.loads(meta), jpeg
