"""The one writer of `edge serve`. The POSTs handled in one turn of the event loop are stored together in
one transaction (a group commit: one write to the log for them all, where a transaction a POST wrote each
page again for each), then each is answered with its own outcome, or with the error that stopped the
transaction (then none of the group is stored). A POST is answered only after the commit: an
acknowledgement is a stored report.

The writes run on the event loop itself: from a thread of their own, every statement would hand Python's
interpreter lock back and forth with the loop, waiting for it each time. What could block the loop for
long, copying the log into the database and syncing it to disk (a checkpoint), runs in another thread
about once a second, in two steps: the first while writes go on, the second, to copy what came meanwhile,
while they wait (the POSTs that come in then are stored together after it). A log written to all the time
is never copied to its end, so it would never start over and would grow without end; the first step keeps
the wait short, most of the copying done.
"""
import asyncio
import time

from edge.server import store

CHECKPOINT_EVERY = 1.0  # seconds
MAX_GROUP = 16  # POSTs in one transaction


class Writer:
    def __init__(self, db, known: dict, checkpointer):
        """`db`: the writer's connection; `known`: the devices' summaries, which it keeps up to date;
        `checkpointer`: a connection for the checkpoints."""
        self._db, self._known, self._checkpointer = db, known, checkpointer
        self._group, self._checkpointed = [], time.monotonic()
        self._checkpointing, self._held = False, False  # a checkpoint runs; writes wait for it
        db.execute("PRAGMA wal_autocheckpoint = 0")  # no commit checkpoints on the loop: see above

    async def store(self, kind: str, device: str, items: list[dict]) -> store.Stored:
        """Store a POST's checked `items` (kind: reports or frames) for `device`."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if not self._group and not self._held:
            loop.call_soon(self._commit)  # after the other handlers ready in this turn of the loop
        self._group.append((kind, device, items, future))
        return await future

    def _commit(self) -> None:
        if self._held or not self._group:  # held: the group goes after the checkpoint
            return
        group, self._group = self._group[:MAX_GROUP], self._group[MAX_GROUP:]
        if self._group:  # the rest after what else is ready: the loop is not held long (after a checkpoint)
            asyncio.get_running_loop().call_soon(self._commit)
        try:
            outcomes = store.store_posts(self._db, [post[:3] for post in group], self._known)
        except Exception as e:  # noqa: BLE001 (every POST of the group is told, and may retry)
            outcomes = [e] * len(group)
        for (*_, future), outcome in zip(group, outcomes):
            if future.done():  # cancelled: the client went away
                continue
            if isinstance(outcome, Exception):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
        if not self._checkpointing and time.monotonic() - self._checkpointed > CHECKPOINT_EVERY:
            self._checkpoint(hold=False)

    def _checkpoint(self, hold: bool) -> None:
        self._checkpointing, self._held = True, hold
        done = asyncio.get_running_loop().run_in_executor(None, _checkpoint, self._checkpointer)
        done.add_done_callback(lambda _: self._resume() if hold else self._checkpoint(hold=True))

    def _resume(self) -> None:
        self._checkpointing, self._held, self._checkpointed = False, False, time.monotonic()
        if self._group:
            self._commit()


def _checkpoint(db) -> None:
    """Copy the log into the database. PASSIVE: it waits for no reader (a long CSV export keeps the log
    from starting over until it ends); the writer starts the log over at its next write once it is all
    copied."""
    try:
        db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    except Exception:  # noqa: BLE001 (a full disk, say: reports are refused with 503 and the next one retries)
        pass
