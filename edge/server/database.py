"""The one place the host meets its database driver: how a write transaction is taken, and what a driver's
error means (busy, full, or any other), so that the endpoints, the writer and the stores never name sqlite3.

SQLite (the default: one file, nothing to install) orders every writer of every worker by its one write lock:
`transaction` takes it at BEGIN (IMMEDIATE), so what a transaction reads is still true when it writes.
"""

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

Error = sqlite3.Error  # any error of the database's
OperationalError = sqlite3.OperationalError  # busy, full, unreadable: the database's state, not the request's
IntegrityError = sqlite3.IntegrityError  # a unique key refused a row


@contextmanager
def transaction(db) -> Iterator[None]:
    """A write transaction: committed when the block ends, rolled back when it raises (unless the database has
    rolled it back already, as SQLite does on a full disk)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def busy(error: Exception) -> bool:
    """Whether another writer held the database: nothing was done, and trying again will do."""
    return isinstance(error, sqlite3.OperationalError) and error.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY


def full(error: Exception) -> bool:
    """Whether the database's disk is full: nothing was written."""
    return isinstance(error, sqlite3.OperationalError) and error.sqlite_errorcode & 0xFF == sqlite3.SQLITE_FULL
