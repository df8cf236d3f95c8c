"""The device's outbox: reports (and collected frames) wait here, in SQLite, until the host has them.

An item is written here before it is sent and removed only when the host has answered that it stored
it, so a crash, a reboot or a host down for days loses nothing. The outbox is bounded: past `limit`
items, or `max_bytes` of them, the oldest go, and it counts them (`dropped`), so the loss is known, not
silent. Its size in bytes is kept as a counter beside the items, in the same transactions.
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
    def __init__(self, path, limit: int = LIMIT, max_bytes: int | None = None, option: str = "--outbox"):
        if limit < 1:
            raise EdgeError(f"--outbox-limit {limit} must be at least 1")
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.executescript(SCHEMA)
            if not self.db.execute("SELECT 1 FROM counters WHERE name = 'bytes'").fetchone():  # kept since 0.1.0
                self.db.execute("INSERT INTO counters SELECT 'bytes', COALESCE(SUM(LENGTH(CAST(body AS BLOB))), 0) "
                                "FROM outbox")
        except (OSError, sqlite3.DatabaseError) as e:
            raise EdgeError(f"{option} {path} cannot be used ({e}): give a writable file, e.g. ~/{path.name}") from None
        self.path, self.limit, self.max_bytes = path, limit, max_bytes

    def add(self, body: str) -> int:
        """Keep an item (its JSON text); returns how many old ones had to go to stay within the bounds."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("INSERT INTO outbox (body) VALUES (?)", (body,))
            self._count("bytes", len(body.encode()))
            over, count_over = 0, len(self) - self.limit
            excess = self.counter("bytes") - self.max_bytes if self.max_bytes is not None else 0
            if count_over > 0 or excess > 0:
                for (size,) in self.db.execute("SELECT LENGTH(CAST(body AS BLOB)) FROM outbox ORDER BY seq"):
                    if over >= count_over and excess <= 0:
                        break
                    over, excess = over + 1, excess - size
            if over:
                self._delete("(SELECT seq FROM outbox ORDER BY seq LIMIT ?)", (over,))
                self._count("dropped", over)
        return over

    def oldest(self, n: int) -> list[tuple[int, str]]:
        return self.db.execute("SELECT seq, body FROM outbox ORDER BY seq LIMIT ?", (n,)).fetchall()

    def remove(self, seqs, counter: str | None = None) -> None:
        """Take reports out: sent, or (with `counter`) given up on and counted."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            seqs = list(seqs)
            self._delete(f"({','.join('?' * len(seqs))})", seqs)
            if counter:
                self._count(counter, len(seqs))

    def _delete(self, which: str, values) -> None:
        """Delete the items whose seq is IN `which`, keeping the byte count."""
        gone = self.db.execute(f"SELECT COALESCE(SUM(LENGTH(CAST(body AS BLOB))), 0) FROM outbox WHERE seq IN {which}",
                               values).fetchone()[0]
        self.db.execute(f"DELETE FROM outbox WHERE seq IN {which}", values)
        self._count("bytes", -gone)

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
