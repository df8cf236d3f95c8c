"""What one worker of `edge serve` holds while it serves (on `app.state.host`), and what the workers share."""

import ctypes
import multiprocessing
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from edge.server import store
from edge.server.database import is_url
from edge.server.options import ServeOptions
from edge.server.timing import Timings
from edge.server.writer import Writer

MIN_FREE = 1 << 20  # bytes to be freed on a full disk before reports are taken again


@dataclass
class Shared:
    """What the workers share besides the database: memory every one of them maps, made before they fork."""

    # the free bytes when a write last failed for a full disk; -1 once writes succeed
    full: ctypes.c_double = field(default_factory=lambda: multiprocessing.RawValue("d", -1.0))
    # 1 while a checkpoint finishes: every worker's writes wait (edge.server.writer)
    hold: ctypes.c_byte = field(default_factory=lambda: multiprocessing.RawValue("b", 0))
    # how long requests took, by endpoint, over every worker (GET /metrics)
    timings: Timings = field(default_factory=Timings)


class Host:
    """A worker's options, log, writer and read connections: the database is the one copy of what it serves."""

    def __init__(self, options: ServeOptions, log: Callable[[str], None], shared: Shared, checkpoints: bool):
        self.options, self.log, self.shared = options, log, shared
        self._local = threading.local()
        # the writer's connection: this opens (or creates) the store and checks its version
        quota = store.FrameQuota(options.frame_quota, options.frame_quota_all, options.frame_reserve)
        self.writer = Writer(
            store.open_db(options.db), shared.hold, store.open_reader(options.db) if checkpoints else None, quota
        )

    def db(self):
        """This thread's read-only connection: the event loop's, or a reading thread's (sqlite3 connections
        are not for sharing between threads)."""
        if not hasattr(self._local, "db"):
            self._local.db = store.open_reader(self.options.db)
        return self._local.db

    def free_bytes(self) -> float:
        """Free bytes beside a SQLite file; PostgreSQL's disk is its server's (a full one refuses, 503)."""
        if is_url(self.options.db):
            return float("inf")
        return shutil.disk_usage(Path(self.options.db).resolve().parent).free

    def disk_full(self) -> bool:
        """Since a write failed for lack of space, until that much more is free again."""
        full = self.shared.full.value
        return full >= 0 and self.free_bytes() < full + MIN_FREE

    def wrote(self, disk_full: bool) -> None:
        """Note whether a write failed for a full disk, for every worker."""
        self.shared.full.value = self.free_bytes() if disk_full else -1.0
