"""The device's outbox: reports wait here, in SQLite, until the host has them.

A report is written here before it is sent and removed only when the host has answered that it stored
it, so a crash, a reboot or a host down for days loses nothing. The outbox is bounded: past `limit`
reports the oldest go, and it counts them (`dropped`), so the loss is known, not silent.
"""
import sqlite3
from pathlib import Path

from edge.errors import EdgeError

LIMIT = 10_000  # reports; at one a 10 s window, more than a day without the host

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class Outbox:
    def __init__(self, path, limit: int = LIMIT):
        if limit < 1:
            raise EdgeError(f"--outbox-limit {limit} must be at least 1")
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.executescript(SCHEMA)
        except (OSError, sqlite3.DatabaseError) as e:
            raise EdgeError(f"--outbox {path} cannot be used ({e}): give a writable file, e.g. ~/edge-outbox.db") from None
        self.path, self.limit = path, limit

    def add(self, body: str) -> int:
        """Keep a report (its JSON text); returns how many old ones had to go to stay within the limit."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("INSERT INTO outbox (body) VALUES (?)", (body,))
            over = len(self) - self.limit
            if over > 0:
                self.db.execute("DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox ORDER BY seq LIMIT ?)", (over,))
                self._count("dropped", over)
        return max(over, 0)

    def oldest(self, n: int) -> list[tuple[int, str]]:
        return self.db.execute("SELECT seq, body FROM outbox ORDER BY seq LIMIT ?", (n,)).fetchall()

    def remove(self, seqs, counter: str | None = None) -> None:
        """Take reports out: sent, or (with `counter`) given up on and counted."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany("DELETE FROM outbox WHERE seq = ?", [(s,) for s in seqs])
            if counter:
                self._count(counter, len(seqs))

    def __len__(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]

    def counter(self, name: str) -> int:
        row = self.db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        return row[0] if row else 0

    def count(self, name: str, n: int) -> None:
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self._count(name, n)

    def _count(self, name: str, n: int) -> None:
        self.db.execute("INSERT INTO counters VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + ?",
                        (name, n, n))

    def close(self) -> None:
        self.db.close()
