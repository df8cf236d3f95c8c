"""The one place the host meets its database driver: connecting (a file is SQLite, a postgresql:// URL is
PostgreSQL), how a write transaction is taken, and what a driver's error means (busy, full, or any other), so
that the endpoints, the writer and the stores never name a driver.

SQLite (the default: one file, nothing to install) orders every writer of every worker by its one write lock:
`transaction` takes it at BEGIN (IMMEDIATE), so what a transaction reads is still true when it writes.
PostgreSQL (psycopg, the `postgres` extra) takes the stores' SQL as it is written for SQLite (`?` placeholders,
ON CONFLICT, RETURNING): `Postgres` translates the placeholders, once a statement.
"""

import functools
import sqlite3
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager

from edge.errors import EdgeError

try:
    import psycopg
except ImportError:  # SQLite only: nothing to install
    psycopg = None  # type: ignore[assignment]

_PG = () if psycopg is None else (psycopg,)
Error = (sqlite3.Error, *(m.Error for m in _PG))  # any error of the database's
# busy, full, unreachable: the database's state, not the request's
OperationalError = (sqlite3.OperationalError, *(m.OperationalError for m in _PG))
IntegrityError = (sqlite3.IntegrityError, *(m.IntegrityError for m in _PG))  # a unique key refused a row
SCHEMES = ("postgresql://", "postgres://")
CONNECT_TIMEOUT = 5  # seconds
STREAM_ROWS = 2000  # rows a long read fetches from PostgreSQL at a time
RECONNECT_FIRST, RECONNECT_MOST = 0.5, 16.0  # seconds between attempts to reach a database that went away


def is_url(target) -> bool:
    """Whether `--db` names a PostgreSQL database rather than a SQLite file."""
    return str(target).startswith(SCHEMES)


def redacted(url: str) -> str:
    """The URL as logs and errors may show it: without its password."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


class Postgres:
    """A psycopg connection that takes the stores' SQL as sqlite3 does: `?` placeholders, `execute` returning a
    cursor, each statement its own transaction outside `transaction`. A connection the server dropped (a
    restart, a failover) is made again by the next statement outside a transaction; while the server stays
    away, statements fail at once (OperationalError: 503) between attempts RECONNECT_FIRST, then twice as far
    apart up to RECONNECT_MOST seconds, so a request never waits out a connect timeout on every call."""

    def __init__(self, url: str):
        """Connected, or the driver's OperationalError (a 503 while serving; `connect` words it for a start)."""
        if psycopg is None:
            raise EdgeError(f"--db {redacted(url)}: PostgreSQL needs psycopg: pip install '.[postgres]'")
        self.url, self._in_transaction, self._wait, self._next = url, False, RECONNECT_FIRST, 0.0
        self.conn = self._connect()

    def execute(self, sql: str, params=()):
        self._connected()
        return self.conn.execute(_placeholders(sql), params)

    def executemany(self, sql: str, rows) -> None:
        self._connected()
        with self.conn.cursor() as cursor:
            cursor.executemany(_placeholders(sql), rows)

    def stream(self, sql: str, params=()) -> Iterator[tuple]:
        """The rows of a long read a batch at a time, from a cursor on the server (psycopg's own would load them
        all into memory first): in a transaction, which a generator closed early rolls back."""
        self._connected()
        with self.conn.transaction(), self.conn.cursor(name="stream") as cursor:
            cursor.itersize = STREAM_ROWS
            cursor.execute(_placeholders(sql), params)
            yield from cursor

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.execute("BEGIN")
        self._in_transaction = True
        try:
            yield
            self.conn.execute("COMMIT")
        except BaseException:
            if not self.conn.broken:
                self.conn.execute("ROLLBACK")
            raise
        finally:
            self._in_transaction = False

    def close(self) -> None:
        self.conn.close()

    def _connect(self):
        return psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT)

    def _connected(self) -> None:
        if not self.conn.broken:
            return
        if self._in_transaction:  # its statements so far are gone with the connection: the caller's error
            raise psycopg.OperationalError("the connection to the database was lost in a transaction")
        now = time.monotonic()
        if now < self._next:
            raise psycopg.OperationalError(f"the database at {redacted(self.url)} is unreachable; trying again")
        self._next = now + self._wait
        self._wait = min(self._wait * 2, RECONNECT_MOST)
        self.conn = self._connect()
        self._wait = RECONNECT_FIRST


def connect(url: str) -> Postgres:
    """A connection to start with: a database that cannot be reached is a one-line EdgeError (exit 2)."""
    try:
        return Postgres(url)
    except OperationalError as e:
        raise EdgeError(
            f"--db {redacted(url)}: cannot connect ({describe(e, url)}): check the server, the URL and the "
            "password (PGPASSWORD or ~/.pgpass)"
        ) from None


@functools.lru_cache(maxsize=1024)
def _placeholders(sql: str) -> str:
    return sql.replace("%", "%%").replace("?", "%s")


def describe(error: Exception, target) -> str:
    """A database error's reason, on one line, without the password if it quotes the URL `target`."""
    password = urllib.parse.urlsplit(str(target)).password
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text.replace(password, "***") if password else text


@contextmanager
def transaction(db) -> Iterator[None]:
    """A write transaction: committed when the block ends, rolled back when it raises (unless the database has
    rolled it back already, as SQLite does on a full disk)."""
    if isinstance(db, Postgres):
        with db.transaction():
            yield
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def stream(db, sql: str, params=()) -> Iterator[tuple]:
    """The rows of a long read (an export) without holding them all in memory: SQLite's cursor reads as it
    goes; PostgreSQL's reads from a cursor on the server. `db` is the read's own connection."""
    if isinstance(db, Postgres):
        yield from db.stream(sql, params)
    else:
        yield from db.execute(sql, params)


def lock(db, *keys: str) -> None:
    """Within a transaction, take `keys` in turn (sorted: two transactions never wait on each other in a circle),
    held until it ends: what SQLite's one write lock gives every transaction, PostgreSQL gives only to those
    that take the same key (two hosts or workers folding one device's reports into its row)."""
    if isinstance(db, Postgres):
        for key in sorted(set(keys)):
            db.execute("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", (key,))


def busy(error: Exception) -> bool:
    """Whether another writer held the database: nothing was done, and trying again will do."""
    if isinstance(error, sqlite3.OperationalError):
        return error.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY
    return psycopg is not None and isinstance(
        error, (psycopg.errors.SerializationFailure, psycopg.errors.DeadlockDetected)
    )


def full(error: Exception) -> bool:
    """Whether the database's disk is full: nothing was written."""
    if isinstance(error, sqlite3.OperationalError):
        return error.sqlite_errorcode & 0xFF == sqlite3.SQLITE_FULL
    return psycopg is not None and isinstance(error, psycopg.errors.DiskFull)
