"""Tokens and reports in SQLite (WAL: the dashboard reads while devices write).

Tokens are random (32 bytes), shown once, stored as SHA-256 hashes: a stolen database lets no one in.
A device token writes only its own device's reports; a reader token only reads. Each report is stored
once by its id, so a device may retry a batch as often as it likes.
"""
import hashlib
import hmac
import json
import secrets
import sqlite3
import time

import numpy as np

from edge.errors import EdgeError
from edge.files import check_writable
from edge.report import check_name

ROLES = ("device", "reader")

SCHEMA = """
CREATE TABLE IF NOT EXISTS tokens (
    name TEXT PRIMARY KEY, role TEXT NOT NULL, hash TEXT NOT NULL UNIQUE, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS reports (
    id TEXT PRIMARY KEY, device TEXT NOT NULL, run TEXT NOT NULL, received REAL NOT NULL,
    window_start REAL NOT NULL, window_end REAL NOT NULL, evaluated INTEGER NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS reports_by_device ON reports (device, window_end);
"""


def open_db(path) -> sqlite3.Connection:
    """The store, created if new. One connection per thread (sqlite3's rule)."""
    path = check_writable(path, "--db")
    try:
        db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a committed report survives a process crash
        db.executescript(SCHEMA)
    except sqlite3.DatabaseError as e:
        raise EdgeError(f"--db {path} is not an edge database ({e}): give another file") from None
    return db


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def create_token(db, name: str, role: str = "device") -> str:
    """A new token for `name`; the only time it is ever shown."""
    check_name(name, "name")
    if role not in ROLES:
        raise EdgeError(f"unknown role '{role}': choose one of {', '.join(ROLES)}")
    token = secrets.token_urlsafe(32)
    try:
        db.execute("INSERT INTO tokens VALUES (?, ?, ?, ?)", (name, role, hash_token(token), time.time()))
    except sqlite3.IntegrityError:
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


def store_reports(db, device: str, reports: list[dict]) -> tuple[int, int]:
    """Store a device's (validated) reports in one transaction: (stored, already there)."""
    now = time.time()
    rows = [(r["id"], device, r["run_id"], now, r["window"]["start"], r["window"]["end"], r["evaluated"],
             json.dumps(r, separators=(",", ":"))) for r in reports]
    db.execute("BEGIN IMMEDIATE")
    try:
        before = db.total_changes
        db.executemany("INSERT OR IGNORE INTO reports VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        stored = db.total_changes - before
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return stored, len(rows) - stored


def devices(db) -> list[dict]:
    """Every device that has reported, with its latest report."""
    rows = db.execute("""
        SELECT r.device, r.received, r.body, c.n FROM reports r
        JOIN (SELECT device, MAX(window_end) AS last, COUNT(*) AS n FROM reports GROUP BY device) c
          ON r.device = c.device AND r.window_end = c.last
        GROUP BY r.device ORDER BY r.device""").fetchall()
    return [{"device": d, "last_seen": received, "reports": n, "latest": json.loads(body)}
            for d, received, body, n in rows]


def has_device(db, device: str) -> bool:
    return db.execute("SELECT 1 FROM reports WHERE device = ? LIMIT 1", (device,)).fetchone() is not None


def device_reports(db, device: str, limit: int = 500, since: float | None = None) -> list[dict]:
    """A device's reports, oldest first: the newest `limit` of them, or those ending after `since`."""
    rows = db.execute("""
        SELECT body FROM (SELECT body, window_end FROM reports WHERE device = ? AND window_end > ?
                          ORDER BY window_end DESC LIMIT ?) ORDER BY window_end""",
                      (device, since if since is not None else float("-inf"), limit)).fetchall()
    return [json.loads(body) for (body,) in rows]


def latest_field_matrix(db, device: str) -> tuple[str, list[str], np.ndarray] | None:
    """The device's latest run with ground truth: (run id, labels, confusion matrix summed over its reports)."""
    row = db.execute("SELECT run FROM reports WHERE device = ? AND evaluated > 0 ORDER BY window_end DESC LIMIT 1",
                     (device,)).fetchone()
    if row is None:
        return None
    labels, total = None, None
    for (body,) in db.execute("SELECT body FROM reports WHERE device = ? AND run = ? AND evaluated > 0",
                              (device, row[0])):
        report = json.loads(body)
        cm = np.array(report["confusion_matrix"], dtype=np.int64)
        if labels is None:
            labels, total = report["labels"], cm
        elif report["labels"] == labels:  # one run, one model: always so for reports edge run writes
            total += cm
    return row[0], labels, total


def all_reports(db):
    """Every report, oldest first, for the CSV export (streamed: the table may be large)."""
    for device, received, body in db.execute("SELECT device, received, body FROM reports ORDER BY window_end"):
        yield device, received, json.loads(body)
