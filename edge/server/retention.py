"""Keeping a fleet's history bounded (`edge serve --keep-days N`): reports, and collected frames nobody
labelled, are removed once they have been held N days; a labelled frame is a person's work, training data,
and stays (frame quotas bound those bytes: edge.server.store).

Age is the host's clock at arrival (`received`), never the device's window: a Pi without a clock that
kept time would otherwise lose its reports at once, or keep them for ever. So a report the host removed
and a device sends again (an answer lost, then the device away longer than N days) arrives again: it is
stored as new, named in the answer's `ids` (the device lets it go, no loop), counted again, and kept N
days from then. The host cannot tell it from a report never seen without keeping every removed id, the
very thing it bounds.

What the reads need is each device's row of `devices` (its latest report, its counts, the field
evaluation), which nothing here touches: the device list counts every report received, removed or not,
and a device whose every report is old still shows its latest.

Removing holds no write for long (it is not free: benchmarks/README.md): one worker (the one that checkpoints)
sweeps at start and every EVERY seconds, from a thread, on a connection of its own, in batches, each its own short
transaction of the oldest BATCH rows (in the order they came, which is the order of `received` give or take one
group commit), pausing between them at least as long as the batch took, so the workers' writes take turns with it. A
sweep ends at the first row not old enough: it reads one batch when there is nothing to do.
"""

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from edge.server import database, store
from edge.server.database import transaction

DAY = 86_400  # seconds
BATCH = 500  # rows a transaction: 2000 held SQLite's write lock ~35 ms, POST p99 9.9x (retention_bench.py)
PAUSE = 0.01  # seconds at least between batches
EVERY = 3600.0  # seconds between sweeps


@dataclass(frozen=True)
class Swept:
    """What a sweep removed: reports, unlabelled frames, and in how many transactions."""

    reports: int = 0
    frames: int = 0
    batches: int = 0


def sweep(db, before: float, batch: int = BATCH, pause: float = PAUSE, stop: threading.Event | None = None) -> Swept:
    """Remove the reports and unlabelled frames received before `before` (Unix time), oldest first, `batch` rows
    a transaction; `stop`, once set, ends each table's sweep after the batch under way."""
    stop = stop or threading.Event()
    reports, report_batches = _batches(db, _reports, before, batch, pause, stop)
    frames, frame_batches = _batches(db, _frames, before, batch, pause, stop)
    return Swept(reports, frames, report_batches + frame_batches)


def _batches(db, one: Callable, before: float, batch: int, pause: float, stop: threading.Event) -> tuple[int, int]:
    """(rows removed, transactions that removed some) by `one` batch after another, until one finds a row too
    young (or the table's end) or `stop` is set."""
    removed = batches = 0
    while True:
        started = time.monotonic()
        with transaction(db):
            gone = one(db, before, batch)
        removed, batches = removed + gone, batches + (gone > 0)
        if gone < batch or stop.wait(max(pause, time.monotonic() - started)):
            return removed, batches


def _reports(db, before: float, batch: int) -> int:
    """Of the oldest `batch` reports, remove those received before `before`: how many."""
    database.lock(db, "retention")  # hosts sharing one database take turns, each batch counted once
    rows = db.execute("SELECT rowid, received FROM reports ORDER BY rowid LIMIT ?", (batch,)).fetchall()
    return _delete(db, "reports", [row for row, received in rows if received < before])


def _frames(db, before: float, batch: int) -> int:
    """Of the oldest `batch` unlabelled frames, remove those received before `before`, their bytes taken off
    their devices' tally (what the quotas read): how many."""
    database.lock(db, "frames")  # as every write of frames and labels: quotas span devices
    rows = db.execute(
        "SELECT rowid, device, received, length(jpeg) FROM frames WHERE label IS NULL ORDER BY rowid LIMIT ?",
        (batch,),
    ).fetchall()
    old = [(row, device, size) for row, device, received, size in rows if received < before]
    freed: Counter = Counter()
    for _, device, size in old:
        freed[device] += size
    db.executemany("UPDATE frame_tally SET bytes = bytes - ? WHERE device = ?", [(b, d) for d, b in freed.items()])
    return _delete(db, "frames", [row for row, _, _ in old])


def _delete(db, table: str, rows: list[int]) -> int:
    """Remove `rows` (rowids) of `table` in one statement (one round trip to a database server): how many."""
    if rows:
        db.execute(f"DELETE FROM {table} WHERE rowid IN ({', '.join('?' * len(rows))})", rows)
    return len(rows)


async def keep(target, days: int, log, every: float = EVERY) -> None:
    """Sweep the store at `target` (a SQLite file or a PostgreSQL URL) at once and every `every` seconds until
    cancelled, removing what was received more than `days` ago; one worker runs this, next to the rollouts'
    clock. A sweep under way when cancelled ends after its batch."""
    stop = threading.Event()
    loop = asyncio.get_running_loop()
    try:
        while True:
            await loop.run_in_executor(None, _sweep_store, target, days, log, stop)
            await asyncio.sleep(every)
    finally:
        stop.set()


def _sweep_store(target, days: int, log, stop: threading.Event) -> None:
    """One sweep on a connection of its own (this thread's), logged in one line if it removed anything."""
    before = time.time() - days * DAY
    try:
        db = store.open_db(target)
        try:
            swept = sweep(db, before, stop=stop)
        finally:
            db.close()
    except Exception as e:  # noqa: BLE001 (busy, full, unreachable: the next sweep tries again)
        log(
            f"--keep-days {days}: old reports could not be removed now ({database.describe(e, target)}); the next "
            "sweep tries again"
        )
        return
    if swept.reports or swept.frames:
        since = datetime.fromtimestamp(before, UTC).strftime("%Y-%m-%d %H:%M UTC")
        log(
            f"--keep-days {days}: removed {swept.reports:,} reports and {swept.frames:,} unlabelled frames received "
            f"before {since}"
        )
