"""The options of `edge serve`, stated once: the command line's flags are made from these fields."""

import os
import urllib.parse
from dataclasses import dataclass, replace
from pathlib import Path

from edge.errors import OptionError
from edge.options import option
from edge.server.database import is_url, redacted
from edge.server.store import ALL_FRAMES, DEVICE_FRAMES, FRAME_RESERVE
from edge.webhook import webhook_url

MIN_BODY = 16_384  # bytes: one report of a many-class model must fit
LOOPBACK = ("127.0.0.1", "localhost", "::1")
MAX_WORKERS = 4  # by default: one a CPU up to this many
MAX_KEEP_DAYS = 36_500  # a hundred years: past it, a typo


@dataclass(frozen=True)
class ServeOptions:
    db: Path | str = option(
        Path("edge.db"),
        "SQLite file the reports go into (created if new), or a PostgreSQL database: postgresql://USER@HOST:PORT/DB "
        "(its password in PGPASSWORD or ~/.pgpass, never on the command line).",
        type=str,
    )
    host: str = option("127.0.0.1", "Address to listen on (0.0.0.0: every interface).")
    port: int = option(8765, "Port to listen on.")
    max_body: int = option(1_000_000, "Largest request body taken, in bytes.")
    max_frame_body: int = option(8_000_000, "Largest body of collected frames taken (edge run --collect), in bytes.")
    max_model_file: int = option(512 << 20, "Largest model file a publisher may upload (edge models push), in bytes.")
    # Reads need a reader token (or a device token, for that device's own): None protects them unless
    # the server listens on loopback only.
    protect_reads: bool | None = option(
        None,
        "Whether the dashboard and read API need a token (edge token create "
        "NAME --reader; a device token reads its own reports) [protected unless "
        "--host is loopback].",
        flag="--protect-reads/--open-reads",
    )
    workers: int | None = option(None, "Processes serving, each on its own core [one a CPU core, up to 4].", type=int)
    frame_quota: int = option(
        DEVICE_FRAMES,
        "Bytes of JPEG one device's collected frames may hold; past it its "
        "oldest unlabelled frames are dropped, counted.",
    )
    frame_quota_all: int = option(
        ALL_FRAMES,
        "Bytes of JPEG all collected frames may hold; past it the largest "
        "holder's oldest unlabelled frames are dropped, counted.",
    )
    frame_reserve: int = option(FRAME_RESERVE, "Bytes of free disk collected frames leave to reports.")
    # A device sends its request as soon as it connects, and gives up on a POST after 10 s in all.
    header_timeout: float = option(10.0, "Seconds a client has for a request's headers; then it is closed.")
    body_timeout: float = option(10.0, "Seconds a request's body may go without a byte; then it is closed.")
    max_connections: int = option(
        1000,
        "Connections a worker keeps open; past it, those that have waited longest "
        "for a request are closed (fewer where open files are short: ulimit -n).",
    )
    keep_days: int | None = option(
        None,
        "Days reports and unlabelled collected frames are kept once received; older ones are removed at start and "
        "hourly, a little at a time (labelled frames stay) [keep everything].",
        type=int,
    )
    alert_webhook: str | None = option(
        None,
        "POST an alert as JSON to this URL when a device goes offline, overheats or drifts, and when it clears "
        "(edge.server.alerts) [$EDGE_ALERT_WEBHOOK: a webhook's URL is often its secret].",
        secret=True,
        envvar="EDGE_ALERT_WEBHOOK",
    )

    def __post_init__(self):
        if is_url(self.db) and urllib.parse.urlsplit(str(self.db)).password is not None:
            raise OptionError(
                f"--db {redacted(str(self.db))}: give the password in PGPASSWORD or ~/.pgpass, not in the URL (a "
                "command line shows in ps)"
            )
        if not 1 <= self.port <= 65535:
            raise OptionError(f"--port {self.port}: give a port from 1 to 65535, e.g. 8765")
        if self.workers is not None and not 1 <= self.workers <= 64:
            raise OptionError(f"--workers {self.workers}: give 1 to 64 processes (one a CPU core is enough)")
        for name in ("header_timeout", "body_timeout"):
            if not 0.1 <= getattr(self, name) <= 3600:
                raise OptionError(
                    f"--{name.replace('_', '-')} {getattr(self, name)}: give 0.1 to 3600 seconds, e.g. 10"
                )
        if not 16 <= self.max_connections <= 1_000_000:
            raise OptionError(f"--max-connections {self.max_connections}: give 16 to 1000000, e.g. 1000")
        if not 0 <= self.frame_quota <= self.frame_quota_all or self.frame_reserve < 0:
            raise OptionError(
                f"--frame-quota {self.frame_quota}, --frame-quota-all {self.frame_quota_all}, "
                f"--frame-reserve {self.frame_reserve}: give bytes, at least 0, a device's quota at "
                "most the quota for all"
            )
        if self.keep_days is not None and not 1 <= self.keep_days <= MAX_KEEP_DAYS:
            raise OptionError(
                f"--keep-days {self.keep_days}: give 1 to {MAX_KEEP_DAYS} days, e.g. 90 (leave it out to keep "
                "everything)"
            )
        if self.alert_webhook is not None:
            webhook_url(self.alert_webhook, "--alert-webhook")
        if self.max_body < MIN_BODY:
            raise OptionError(
                f"--max-body {self.max_body}: give at least {MIN_BODY} bytes (one report of a "
                "1000-class model is about 60 KB; the default is 1000000)"
            )
        if self.max_frame_body < MIN_BODY:
            raise OptionError(
                f"--max-frame-body {self.max_frame_body}: give at least {MIN_BODY} bytes (a collected "
                "640x480 frame is about 100 KB; the default is 8000000)"
            )

        if self.max_model_file < MIN_BODY:
            raise OptionError(
                f"--max-model-file {self.max_model_file}: give at least {MIN_BODY} bytes (a "
                "MobileNetV2 bundle's model is about 3-14 MB)"
            )

    def resolved(self) -> "ServeOptions":
        """A copy with what was left to the machine decided: the workers, whether reads are protected."""
        workers = self.workers or min(os.cpu_count() or 1, MAX_WORKERS)
        protect = self.host not in LOOPBACK if self.protect_reads is None else self.protect_reads
        db = self.db if is_url(self.db) else Path(self.db)
        return replace(self, db=db, workers=workers, protect_reads=protect)
