"""The device's outbox: reports (and collected frames) wait here, in SQLite, until the host has them.

An item is written here before it is sent and removed only when the host has answered that it stored
it, so a crash, a reboot or a host down for days loses nothing. The outbox is bounded: past `limit`
items, or past `max_bytes` of disk (the database and its log together), the oldest go, and it counts
them (`dropped`), so the loss is known, not silent.

A file holds one kind of item, named in its header (application_id): reports and frames never share one,
and a file of the other kind, another program's database or a text file is refused, untouched. Each item
is kept with the device its body names; a device takes only its own, and another's wait, set aside, for
a run as that device. A file SQLite cannot read (a power cut on an SD card) is moved aside whole, named,
and a new one started: the device keeps running.
"""

import codecs
import os
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path

from edge.errors import EdgeError

LIMIT = 10_000  # reports; at one a 10 s window, more than a day without the host
KINDS = {"reports": ("--outbox", 0x65646752), "frames": ("--collect-store", 0x65646746)}  # option, 'edgR', 'edgF'
MAGIC = b"SQLite format 3\0"
OURS = {"outbox", "counters", "sqlite_sequence"}  # tables

TABLES = """
CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL, device TEXT);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class Damaged(Exception):
    """A file that is (or was) an outbox and that SQLite cannot read."""


class Outbox:
    """The outbox of `kind` ('reports' or 'frames') at `path`, for `device`."""

    def __init__(
        self, path, kind: str, device: str | None = None, limit: int = LIMIT, max_bytes: int | None = None, log=None
    ):
        if limit < 1:
            raise EdgeError(f"--outbox-limit {limit} must be at least 1")
        self.path, self.kind, self.device, self.limit, self.max_bytes = Path(path), kind, device, limit, max_bytes
        self.option, self.moved_aside = KINDS[kind][0], None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                self.db = self._open()
            except Damaged as e:
                self.moved_aside = move_aside(self.path)
                (log or (lambda message: None))(
                    f"{self.option} {self.path} is damaged ({e}): moved aside, whole, to {self.moved_aside}; started "
                    "a new one"
                )
                self.db = self._open()
        except (OSError, sqlite3.DatabaseError, Damaged) as e:
            raise EdgeError(
                f"{self.option} {self.path} cannot be used ({e}): give a writable file, e.g. ~/{self.path.name}"
            ) from None

    def _open(self) -> sqlite3.Connection:
        """Connect to an outbox of this kind (made if new, brought up to date if old), or refuse the file."""
        self._refuse_text()
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        try:
            self._refuse_marked(db.execute("PRAGMA application_id").fetchone()[0])
            tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if tables - OURS or ("outbox" in tables and not {"seq", "body"} <= columns(db)):
                raise EdgeError(
                    f"{self.option} {self.path} is another program's database (tables: "
                    f"{', '.join(sorted(tables))}): give the {self.kind} a file of their own"
                )
            problems = [row for (row,) in db.execute("PRAGMA quick_check")]
            if problems != ["ok"]:
                raise Damaged("; ".join(problems[:3]))
            if db.execute("PRAGMA auto_vacuum").fetchone()[0] != 1:  # deletes give the disk back: the bound holds
                db.execute("PRAGMA auto_vacuum = FULL")
                if tables:
                    db.execute("VACUUM")  # once, an outbox of an earlier version
            db.execute("PRAGMA journal_mode = WAL")
            db.executescript(TABLES)
            if "device" not in columns(db):
                self._upgrade(db)
            db.execute("CREATE INDEX IF NOT EXISTS outbox_device ON outbox (device, seq)")
            db.execute(f"PRAGMA application_id = {KINDS[self.kind][1]}")
        except BaseException as e:
            db.close()
            if type(e) is sqlite3.DatabaseError:  # SQLITE_CORRUPT, SQLITE_NOTADB; not locked, full or I/O errors
                raise Damaged(str(e)) from None
            raise
        return db

    def _refuse_text(self) -> None:
        """A file without SQLite's header is a damaged outbox if it is binary (a database's first page
        garbled), and refused if it is text: a person's file (a device never writes text there), which
        moving aside would take from whatever uses it."""
        try:
            with open(self.path, "rb") as f:
                head = f.read(4096)
        except FileNotFoundError:
            return
        if not head or head.startswith(MAGIC):
            return
        if b"\0" in head or not _utf8(head):
            raise Damaged("not an SQLite database")
        raise EdgeError(
            f"{self.option} {self.path} is a text file, not an outbox: give the {self.kind} a file of their own"
        )

    def _refuse_marked(self, app_id: int) -> None:
        """Refuse a database marked as the other kind's outbox or as another program's; unmarked are new
        files, empty databases and the outboxes of earlier versions."""
        for kind, (option, mark) in KINDS.items():
            if app_id == mark and kind != self.kind:
                raise EdgeError(
                    f"{self.option} {self.path} is where {kind} wait ({option}): give the {self.kind} a "
                    "file of their own"
                )
        if app_id not in (0, KINDS[self.kind][1]):
            raise EdgeError(
                f"{self.option} {self.path} is another program's database: give the {self.kind} a file of their own"
            )

    def _upgrade(self, db) -> None:
        """An outbox of an earlier version: each item's device, from its body; an item of the other kind (one
        file given as both --outbox and --collect-store) gets none, and waits, set aside, never sent."""
        frames = self.kind == "frames"
        with db:
            db.execute("BEGIN IMMEDIATE")
            db.execute("ALTER TABLE outbox ADD COLUMN device TEXT")
            db.execute(
                "UPDATE outbox SET device = CASE WHEN json_valid(body) AND "
                "(json_type(body, '$.jpeg') IS NOT NULL) = ? THEN json_extract(body, '$.device_id') END",
                (frames,),
            )

    @contextmanager
    def _transaction(self):
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            yield
        try:  # the log back to nothing, so that the bound holds for the files on disk
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.OperationalError:
            pass  # what was written is safe in the log; the next write's checkpoint tries again

    def add(self, body: str) -> int:
        """Keep an item (its JSON text); returns how many old ones had to go to stay within the bounds."""
        with self._transaction():
            self.db.execute("INSERT INTO outbox (body, device) VALUES (?1, json_extract(?1, '$.device_id'))", (body,))
            over = max(0, len(self) - self.limit)
            self._delete_oldest(over)
            while self.max_bytes is not None and self.disk_bytes() > self.max_bytes and len(self):
                self._delete_oldest(1)
                over += 1
            if over:
                self._count("dropped", over)
        return over

    def _delete_oldest(self, n: int) -> None:
        self.db.execute("DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox ORDER BY seq LIMIT ?)", (n,))

    def disk_bytes(self) -> int:
        """The database's size once written (auto_vacuum gives free pages back at each commit)."""
        pages, free, size = (
            self.db.execute(f"PRAGMA {name}").fetchone()[0] for name in ("page_count", "freelist_count", "page_size")
        )
        return (pages - free) * size

    def oldest(self, n: int) -> list[tuple[int, str]]:
        """This device's oldest items."""
        return self.db.execute(
            "SELECT seq, body FROM outbox WHERE device IS ? ORDER BY seq LIMIT ?", (self.device, n)
        ).fetchall()

    def pending(self) -> int:
        """This device's items."""
        return self.db.execute("SELECT COUNT(*) FROM outbox WHERE device IS ?", (self.device,)).fetchone()[0]

    def aside(self) -> dict:
        """The items this device may not send, by the device they are for (None: of the other kind)."""
        return dict(
            self.db.execute(
                "SELECT device, COUNT(*) FROM outbox WHERE device IS NOT ? GROUP BY device", (self.device,)
            ).fetchall()
        )

    def remove(self, seqs, counter: str | None = None) -> None:
        """Take items out: sent, or (with `counter`) given up on and counted."""
        seqs = list(seqs)
        with self._transaction():
            self.db.execute(f"DELETE FROM outbox WHERE seq IN ({','.join('?' * len(seqs))})", seqs)
            if counter:
                self._count(counter, len(seqs))

    def __len__(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]

    def counter(self, name: str) -> int:
        row = self.db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        return row[0] if row else 0

    def count(self, name: str, n: int) -> None:
        with self._transaction():
            self._count(name, n)

    def _count(self, name: str, n: int) -> None:
        self.db.execute(
            "INSERT INTO counters VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + ?", (name, n, n)
        )

    def close(self) -> None:
        self.db.close()


def columns(db) -> set:
    return {row[1] for row in db.execute("PRAGMA table_info(outbox)")}


def _utf8(data: bytes) -> bool:
    """Whether `data` is the start of UTF-8 text (its last character may be cut)."""
    try:
        codecs.getincrementaldecoder("utf-8")().decode(data)
        return True
    except UnicodeDecodeError:
        return False


def move_aside(path: Path) -> Path:
    """Rename a damaged database, and its log first (a log left beside a new database would be read into it),
    to PATH.damaged-TIME; returns the new name."""
    aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
    while aside.exists():
        aside = aside.with_name(aside.name + "x")
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            os.replace(side, aside.with_name(aside.name + suffix))
    os.replace(path, aside)
    return aside
