"""The writer of one `edge serve` worker. The POSTs handled in one turn of the event loop are stored together
in one transaction (a group commit: one write to the log for them all, where a transaction a POST wrote
each page again for each), then each is answered with its own outcome, or with the error that stopped the
transaction (then none of the group is stored). A POST is answered only after the commit: an
acknowledgement is a stored report.

The writes run on the event loop itself: from a thread of their own, every statement would hand Python's
interpreter lock back and forth with the loop, waiting for it each time. So they never wait for SQLite's
write lock either: while another worker holds it, the group is tried again a moment later, the loop
answering reads meanwhile.

Copying the log into the database and syncing it to disk (a checkpoint) is one worker's task (two would get
in each other's way), whoever wrote: it runs in another thread once a second, in two steps: the first while
writes go on; the second, to copy what came meanwhile and start the log over (SQLite's RESTART checkpoint),
while every worker's writes wait, told by the shared `hold`: it takes the write lock as soon as the
transaction in progress ends, instead of racing the workers for it between theirs (SQLite's busy handler
polls for it at growing intervals). A log written to all the time is never copied to its end, so it would
never start over and would grow without end; the first step keeps the second short, most of the copying
done. The second waits for no reader longer than READER_WAIT: a long CSV export keeps the log from starting
over until it ends, and holds writes up that long once a second meanwhile.
"""

import asyncio

from edge.server import database, store

CHECKPOINT_EVERY = 1.0  # seconds
MAX_GROUP = 16  # POSTs in one transaction
RETRY = 0.002  # seconds before trying again for the write lock another worker holds
READER_WAIT = 100  # milliseconds the second step of a checkpoint waits for readers and writers


class Writer:
    def __init__(self, db, hold, checkpointer=None, quota: store.FrameQuota = store.FrameQuota()):
        """`db`: the writer's connection; `hold`: shared with the other workers' writers, 1 while a
        checkpoint finishes; `checkpointer`: a connection for `checkpoints` (None: another worker makes
        them); `quota`: what collected frames may take (edge.server.store)."""
        self._db, self._hold, self._checkpointer, self._quota = db, hold, checkpointer, quota
        self._group: list[tuple] = []  # (kind, device, items, future) of each POST waiting
        self._waiting = False  # for the write lock: a commit is due after RETRY
        if isinstance(db, database.Postgres):  # its server checkpoints; a writer waits for another's row locks
            self._checkpointer = None
            return
        db.execute("PRAGMA wal_autocheckpoint = 0")  # no commit checkpoints on the loop: see above
        db.execute("PRAGMA busy_timeout = 0")  # never wait on the loop: see above
        if checkpointer:
            checkpointer.execute(f"PRAGMA busy_timeout = {READER_WAIT}")

    async def store(self, kind: str, device: str, items: list[dict]) -> store.Stored:
        """Store a POST's checked `items` (kind: reports, frames or labels) for `device`."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if not self._group and not self._waiting:
            loop.call_soon(self._commit)  # after the other handlers ready in this turn of the loop
        self._group.append((kind, device, items, future))
        return await future

    def _commit(self) -> None:
        self._waiting = False
        loop = asyncio.get_running_loop()
        if self._hold.value:  # a checkpoint finishes
            return self._retry()
        group = self._group[:MAX_GROUP]
        try:
            outcomes: list[store.Stored | Exception] = list(
                store.store_posts(self._db, [post[:3] for post in group], self._quota)
            )
        except database.OperationalError as e:
            if database.busy(e):  # another worker writes: nothing was done
                return self._retry()
            outcomes = [e] * len(group)
        except Exception as e:  # noqa: BLE001 (every POST of the group is told, and may retry)
            outcomes = [e] * len(group)
        self._group = self._group[MAX_GROUP:]
        if self._group:  # the rest after what else is ready: the loop is not held long
            loop.call_soon(self._commit)
        for (*_, future), outcome in zip(group, outcomes, strict=True):
            if future.done():  # cancelled: the client went away
                continue
            if isinstance(outcome, Exception):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)

    def _retry(self) -> None:
        self._waiting = True
        asyncio.get_running_loop().call_later(RETRY, self._commit)

    async def checkpoints(self) -> None:
        """Checkpoint every CHECKPOINT_EVERY seconds until cancelled, whichever worker wrote (a small
        fleet's few connections may all be another worker's)."""
        loop = asyncio.get_running_loop()
        while self._checkpointer is not None:  # SQLite's
            await asyncio.sleep(CHECKPOINT_EVERY)
            await loop.run_in_executor(None, _checkpoint, self._checkpointer, self._hold)


def _checkpoint(db, hold) -> None:
    """Copy the log into the database while writes go on (PASSIVE), then the rest, holding writes off, and
    start the log over (RESTART)."""
    try:
        db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        hold.value = 1
        db.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()
    except Exception:  # noqa: BLE001 (busy, or a full disk: reports are refused with 503; the next one retries)
        pass
    finally:
        hold.value = 0
