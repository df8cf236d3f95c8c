"""`edge serve migrate`: a host's SQLite store copied into PostgreSQL, every table of edge.server.schema.

Each table is copied in the order its rows came (SQLite's rowid), a batch a transaction, so a copy cut short
(Ctrl-C, a kill, a lost connection) keeps every batch it committed and a second run carries on after them,
copying nothing twice: a table read in arrival order (schema.ROW_ORDERED) resumes after the largest rowid the
target holds, which it keeps as the source's (its identity column written, then moved past it, so the rows a
host takes later come after); the other tables are small and sent whole again, a row held already left as it
is (ON CONFLICT DO NOTHING). Before copying anything, what the target holds is checked to be the source's, so
a database holding another host's data is refused, not merged into. At the end each table's rows are counted
on both sides.

The source should not change meanwhile: stop its host first.
"""

import re
import sqlite3
import time
import urllib.parse
from collections.abc import Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from edge.errors import EdgeError
from edge.progress import Log
from edge.results import Result
from edge.server import database, schema, store
from edge.server.database import redacted, transaction

BATCH = 1000  # rows a transaction
BATCH_BYTES = 32 << 20  # and at most about this much data (frames' JPEGs, model files)
URL = "postgresql://USER@HOST:PORT/DB"


@dataclass(frozen=True, kw_only=True)
class Migrated(Result):
    """What `edge serve migrate` did: each table's rows in the source and the target, and those this run copied."""

    source: str  # the SQLite file
    target: str  # the PostgreSQL URL (never with a password: one is refused)
    tables: dict[str, dict[str, int]]  # table -> {"source", "target", "copied"}
    copied: int  # rows this run copied, all tables
    seconds: float


@dataclass(frozen=True)
class _Table:
    name: str
    columns: tuple[str, ...]
    key: tuple[str, ...]  # its primary key (none for rollout_events)
    ordered: bool  # read in arrival order: PostgreSQL keeps a rowid of it


def migrate(source, target: str, log: Log | None = None, batch: int = BATCH) -> Migrated:
    """Copy the store in the SQLite file `source` (brought to the current version first, as `edge serve` would)
    into the PostgreSQL database `target`, or carry on a copy cut short; EdgeError for bad input, a target
    holding other data, or counts that differ at the end."""
    check_target(target)
    if batch < 1:
        raise EdgeError(f"--batch {batch}: give at least 1 row, e.g. {BATCH}")
    started = time.monotonic()
    with closing(open_source(source)) as src, closing(_open(store.open_db, target, "--to")) as pg:
        _take_turn(pg, target)
        tables = _tables(src)
        before = {t.name: _count(pg, t.name) for t in tables}
        resume = {t.name: _resume(src, pg, t, before[t.name], target) for t in tables}
        todo = {t.name: _count(src, t.name, resume[t.name]) for t in tables}
        bar = (log or Log(False)).bar(sum(todo.values()), "copying")
        try:
            for t in tables:
                _copy(src, pg, t, resume[t.name], batch, bar, target)
        finally:
            bar.finish()
        counts = {
            t.name: {
                "source": _count(src, t.name),
                "target": (held := _count(pg, t.name)),
                "copied": held - before[t.name],
            }
            for t in tables
        }
    differ = [
        f"{name} {c['source']} in the source, {c['target']} in the target"
        for name, c in counts.items()
        if c["source"] != c["target"]
    ]
    if differ:
        raise EdgeError(
            f"the counts differ after copying ({'; '.join(differ)}): stop the host that writes {source}, then run "
            "the same command again"
        )
    return Migrated(
        source=str(source),
        target=redacted(target),
        tables=counts,
        copied=sum(c["copied"] for c in counts.values()),
        seconds=round(time.monotonic() - started, 3),
    )


def check_target(url: str) -> None:
    """A PostgreSQL URL without a password (a command line shows in ps), or EdgeError."""
    if not database.is_url(url):
        raise EdgeError(f"--to {url}: give the PostgreSQL database to copy into, {URL}")
    if urllib.parse.urlsplit(url).password is not None:
        raise EdgeError(
            f"--to {redacted(url)}: give the password in PGPASSWORD or ~/.pgpass, not in the URL (a command line "
            "shows in ps)"
        )


def open_source(path) -> sqlite3.Connection:
    """The SQLite store a host served, brought to the current version (store.open_db), or EdgeError: a URL,
    no such file, a file that is not an edge store (which is left as it is)."""
    if database.is_url(path):
        raise EdgeError(f"--from {redacted(str(path))}: give the SQLite file a host served (edge serve --db FILE)")
    path = Path(path)
    if not path.is_file():
        raise EdgeError(f"--from {path}: no such file: give the SQLite file a host served (edge serve --db FILE)")
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as probe:
            held = probe.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'reports'").fetchone()
    except sqlite3.DatabaseError:
        held = None
    if not held:
        raise EdgeError(
            f"--from {path} is not an edge store: give the SQLite file a host served (edge serve --db FILE)"
        )
    return _open(store.open_db, path, "--from")


def text(result: Migrated) -> str:
    """The table of counts, and what was copied where."""
    lines = [f"{'table':<16}{'source':>12}{'target':>12}{'copied':>12}"]
    lines += [f"{name:<16}{c['source']:>12,}{c['target']:>12,}{c['copied']:>12,}" for name, c in result.tables.items()]
    rate = result.copied / result.seconds if result.seconds else 0.0
    lines.append(
        f"copied {result.copied:,} rows from {result.source} to {result.target} in {result.seconds:.1f} s "
        f"({rate:,.0f} rows/s); the counts agree"
    )
    return "\n".join(lines)


def _open(opener, target, flag: str):
    """store.open_db's connection, its errors worded for `flag` (it words them for --db)."""
    try:
        return opener(target)
    except EdgeError as e:
        raise EdgeError(re.sub(r"^--db ", f"{flag} ", str(e))) from None


def _take_turn(pg, url: str) -> None:
    """One migration into a database at a time (held until the connection closes: a killed run lets go)."""
    if not pg.execute("SELECT pg_try_advisory_lock(hashtextextended('edge serve migrate', 0))").fetchone()[0]:
        raise EdgeError(f"--to {redacted(url)}: another edge serve migrate is copying into it: let it finish")


def _tables(src) -> list[_Table]:
    """Every table of the store, in the schema's order, with its columns and primary key as the source has them."""
    tables = []
    for name in re.findall(r"CREATE TABLE IF NOT EXISTS (\w+) \(", schema.TABLES):
        info = src.execute(f"PRAGMA table_info({name})").fetchall()  # cid, name, type, notnull, default, pk
        key = tuple(row[1] for row in sorted(info, key=lambda row: row[5]) if row[5])
        tables.append(_Table(name, tuple(row[1] for row in info), key, name in schema.ROW_ORDERED))
    return tables


def _count(db, table: str, after: int = 0) -> int:
    where = " WHERE rowid > ?" if after else ""
    return db.execute(f"SELECT COUNT(*) FROM {table}{where}", (after,) if after else ()).fetchone()[0]


def _resume(src, pg, t: _Table, held: int, url: str) -> int:
    """The source's rowid to carry on after: the target's largest for a table in arrival order, none for the
    others. Refused (EdgeError) if the target holds rows the source does not: for a table in arrival order,
    counted up to that rowid and the row there compared; for the others (a few rows a device, model or
    rollout), every row compared."""
    columns = ", ".join(t.columns)
    if not held:
        return 0
    if t.ordered:
        (last,) = pg.execute(f"SELECT MAX(rowid) FROM {t.name}").fetchone()
        theirs = pg.execute(f"SELECT {columns} FROM {t.name} WHERE rowid = ?", (last,)).fetchone()
        mine = src.execute(f"SELECT {columns} FROM {t.name} WHERE rowid = ?", (last,)).fetchone()
        if held == _count(src, t.name) - _count(src, t.name, last) and _same(theirs, mine):
            return last
        _refuse(url, t.name, f"row {last}")
    where = " AND ".join(f"{column} = ?" for column in t.key)
    at = [t.columns.index(column) for column in t.key]
    for row in pg.execute(f"SELECT {columns} FROM {t.name}").fetchall():
        key = tuple(row[i] for i in at)
        if not _same(row, src.execute(f"SELECT {columns} FROM {t.name} WHERE {where}", key).fetchone()):
            _refuse(url, t.name, "/".join(map(str, key)))
    return 0


def _same(theirs, mine) -> bool:
    """Whether two rows hold the same values (PostgreSQL's booleans and bytes as SQLite's integers and bytes)."""
    return theirs is not None and mine is not None and tuple(theirs) == tuple(mine)


def _refuse(url: str, table: str, row: str):
    raise EdgeError(
        f"--to {redacted(url)} holds data this store does not ({table} {row}): another host's, or the store "
        "changed since a run cut short: give an empty database"
    )


def _copy(src, pg, t: _Table, after: int, batch: int, bar, url: str) -> None:
    """The source's rows after rowid `after`, in that order, a transaction a batch; the rowid kept where the
    target has one (OVERRIDING its identity), a row held already left as it is. Then the identities moved past
    the rows copied."""
    columns = ("rowid", *t.columns) if t.ordered else t.columns
    insert = (
        f"INSERT INTO {t.name} ({', '.join(columns)}) OVERRIDING SYSTEM VALUE VALUES "
        f"({', '.join('?' * len(columns))}) ON CONFLICT DO NOTHING"
    )
    kinds = dict(
        pg.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND table_name = ?",
            (t.name,),
        ).fetchall()
    )
    flags = [i for i, column in enumerate(columns) if kinds[column] == "boolean"]  # SQLite's are 0 and 1
    rows = src.execute(f"SELECT rowid, {', '.join(t.columns)} FROM {t.name} WHERE rowid > ? ORDER BY rowid", (after,))
    try:
        for chunk in _batches(rows, batch):
            with transaction(pg):
                pg.executemany(insert, [_booleans(row if t.ordered else row[1:], flags) for row in chunk])
            bar.update(len(chunk))
        _sequences_past(pg, t.name)
    except database.OperationalError as e:
        raise EdgeError(
            f"copying {t.name} into {redacted(url)} stopped ({database.describe(e, url)}): run the same command "
            "again, it carries on where it stopped"
        ) from None
    except database.Error as e:
        raise EdgeError(
            f"PostgreSQL refused a row of {t.name} ({database.describe(e, url)}): the rows before it are copied; "
            "mend the row in the source and run the same command again"
        ) from None


def _booleans(row: tuple, flags: list[int]) -> tuple:
    """The row with the values at `flags` as booleans (PostgreSQL takes no integer for one)."""
    if not flags:
        return row
    return tuple(value if i not in flags or value is None else bool(value) for i, value in enumerate(row))


def _batches(rows: Iterable[tuple], size: int) -> Iterator[list[tuple]]:
    """`rows` in lists of `size`, or fewer once they hold BATCH_BYTES of text and bytes."""
    chunk, held = [], 0
    for row in rows:
        chunk.append(row)
        held += sum(len(value) for value in row if isinstance(value, (str, bytes)))
        if len(chunk) >= size or held >= BATCH_BYTES:
            yield chunk
            chunk, held = [], 0
    if chunk:
        yield chunk


def _sequences_past(pg, table: str) -> None:
    """Move the table's identity columns (rowid, rollouts' id) past the largest value held: a row the host
    takes later comes after those copied."""
    for (column,) in pg.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = CAST(? AS regclass) AND attidentity <> ''", (table,)
    ).fetchall():
        pg.execute(
            f"SELECT setval(pg_get_serial_sequence(?, ?), COALESCE(MAX({column}), 0) + 1, false) FROM {table}",
            (table, column),
        )
