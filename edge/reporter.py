"""Sending field reports (and collected frames) to `edge serve`, off the frame loop.

`submit` hands an item to a sender thread and returns at once. The thread makes its JSON text, writes it
to the outbox first, then posts the oldest items in batches. A batch leaves the outbox only when the host
answers that it stored it; the host keeps each id once, so a resend after a lost answer duplicates
nothing. Only the host's own word counts: its answer must name the ids it now holds; a 200 from anything
else (a proxy, a captive portal) lets nothing go. An outbox that cannot be written (a full disk) loses the
item, counted, and the run goes on. Failures back off exponentially with jitter (0.5 s
doubling to 60 s, times 0.5-1.5), so a fleet coming back after an outage does not hammer the host in step.
A sender sends only its own device's items (another's, left in a shared outbox, are set aside and counted:
their 403 would block its own for ever), follows no redirect (the token would go along), and never shows
a URL's user name or password: the token is how a device signs in, so --report-to refuses them.
"""

import json
import queue
import random
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from edge.errors import OptionError, finite
from edge.host_client import OPENER, check_url, error_text
from edge.options import option
from edge.outbox import LIMIT, Outbox
from edge.report import check_name

BATCH = 50  # reports a POST
BACKOFF_START, BACKOFF_MAX = 0.5, 60.0  # seconds
TIMEOUT = 10.0  # seconds for one POST
DEFAULT_OUTBOX = Path("~/.local/state/edge/outbox.db")


@dataclass(frozen=True)
class ReportOptions:
    """Where and as whom `edge run` reports (RunOptions.reporting). Its options go by the keywords of `edge run`'s
    flags (report_to, report_every, ...), whose names say what they are among the run's other options."""

    url: str = option(
        help="Send a report every --report-every seconds to this edge serve host, e.g. http://192.168.1.10:8765.",
        keyword="report_to",
    )
    token: str | None = option(
        None,
        "The device's token (edge token create on the host) [$EDGE_TOKEN: set it there, "
        "since other users see a command line in ps].",
        secret=True,
        envvar="EDGE_TOKEN",
    )
    device_id: str | None = option(None, "The name the token was made for [$EDGE_DEVICE_ID].", envvar="EDGE_DEVICE_ID")
    every: float = option(10.0, "Seconds each report covers.", keyword="report_every")
    outbox: Path = option(DEFAULT_OUTBOX, "Where reports wait until the host has them.")
    # Not options of the command: for tests, and for a caller that makes the dataclass.
    outbox_limit: int = LIMIT
    flush: float = 10.0  # seconds to keep sending at the end of a run; what is left waits in the outbox

    def __post_init__(self):
        check_url(self.url, "--report-to")
        if not self.token:
            raise OptionError("--report-to needs --token: make one on the host with 'edge token create DEVICE'")
        check_name(self.device_id)
        if not (finite(self.every) and self.every > 0 and finite(self.flush) and self.flush >= 0):
            raise OptionError(
                f"--report-every {self.every}: give a positive number of seconds, e.g. 10 (and a flush "
                "time of at least 0)"
            )


class Sender:
    """One outbox, drained by a thread of its own to one endpoint of the host (`path`), `batch` items a POST
    under `key`. `text(item)` makes an item's JSON text on that thread (None: nothing to keep); `queued`
    bounds the items waiting for it (0: no bound)."""

    def __init__(
        self,
        options: ReportOptions,
        path: str,
        key: str,
        outbox: Outbox,
        batch: int,
        text,
        log=None,
        queued: int = 0,
        told=None,
    ):
        self.options, self.key, self.outbox, self.batch, self.text = options, key, outbox, batch, text
        self.told = told  # called with an answer's "run": the model version the host names (edge.follow)
        self.endpoint = options.url.rstrip("/") + path
        self.log = log or (lambda message: None)
        self.sent, self.unstored = 0, 0
        aside = outbox.aside()
        if aside:
            self.log(
                f"{sum(aside.values())} {key} in {outbox.path} are not {options.device_id}'s to send ("
                + ", ".join(f"{n} for {device or 'no device: of another kind'}" for device, n in aside.items())
                + "): set aside, for a run as their device"
            )
        self.last_error: str | None = None
        self._queue: queue.Queue = queue.Queue(queued)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"edge-{key}", daemon=True)
        self._thread.start()

    def submit(self, item, wait: bool = False) -> bool:
        """Queue an item. False: the queue is full (and `wait` is False), and the item is not kept."""
        try:
            self._queue.put(item, block=wait)
            return True
        except queue.Full:
            return False

    def close(self) -> dict:
        """Stop after trying to send what is left for up to `flush` seconds; what the outbox still holds is
        sent by the next run. Returns the tally for the run summary."""
        self._stop.set()
        self._thread.join(self.options.flush + TIMEOUT + 5)
        self._keep_queued()
        stats = {
            "sent": self.sent,
            "pending": self.outbox.pending(),
            "dropped": self.outbox.counter("dropped"),
            "rejected": self.outbox.counter("rejected"),
            "conflicts": self.outbox.counter("conflicts"),
            "unstored": self.unstored,
            "set_aside": sum(self.outbox.aside().values()),
            "moved_aside": self.outbox.moved_aside and str(self.outbox.moved_aside),
            "last_error": self.last_error,
            "outbox": str(self.outbox.path),
        }
        self.outbox.close()
        return stats

    # -- sender thread --

    def _keep_queued(self, wait: float = 0.0) -> None:
        """Move submitted items into the outbox, waiting up to `wait` seconds for the first."""
        while True:
            try:
                item = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
            except queue.Empty:
                return
            wait = 0.0
            body = self.text(item)
            if body is None:
                continue
            try:
                if self.outbox.add(body):
                    self.log(f"{self.outbox.path} is full: dropped the oldest {self.key}")
            except sqlite3.Error as e:  # a full disk: counted; the run goes on
                self.unstored += 1
                if self.unstored == 1:
                    self.log(
                        f"cannot keep {self.key} in {self.outbox.path} ({e}): they are lost, counted, until "
                        "it can be written again"
                    )

    def _run(self) -> None:
        attempt, wait_until, size = 0, 0.0, self.batch
        deadline = None
        while True:
            now = time.monotonic()
            if self._stop.is_set():
                self._keep_queued()
                deadline = deadline or now + self.options.flush
                if now >= deadline or not self.outbox.pending():
                    return
            if now >= wait_until and self.outbox.pending():
                batch = self.outbox.oldest(size)
                outcome, held = self._post([body for _, body in batch])
                gone = [seq for seq, body in batch if _id(body) in held]
                if gone:
                    self.outbox.remove(gone)
                    self.sent += len(gone)
                if outcome == "stored" and len(gone) == len(batch):
                    attempt, size = 0, self.batch
                    continue
                if outcome == "refused" and len(batch) > 1:
                    size = max(1, len(batch) // 2)  # find the item the host refuses
                    continue
                if outcome == "refused":
                    self.outbox.remove([batch[0][0]], counter="rejected")
                    self.log(f"the host refused one of the {self.key} for good: {self.last_error}")
                    size = self.batch
                    continue
                attempt += 1
                size = max(1, len(batch) // 2)  # a batch too big for the host may only ever see a reset
                delay = min(BACKOFF_MAX, BACKOFF_START * 2 ** (attempt - 1)) * random.uniform(0.5, 1.5)
                wait_until = now + delay
                self.log(
                    f"sending {self.key} to {self.options.url} failed ({self.last_error}); "
                    f"{self.outbox.pending()} waiting, retrying in {delay:.1f} s"
                )
            pending = self.outbox.pending() and wait_until > now
            self._keep_queued(wait=min(0.2, wait_until - now) if pending else 0.2)

    def _post(self, bodies: list[str]) -> tuple[str, set]:
        """('stored', the ids the host says it holds), ('refused', none): this batch will never be taken
        (400/413/422), or ('failed', none): try again later."""
        data = ('{"' + self.key + '":[' + ",".join(bodies) + "]}").encode()
        request = urllib.request.Request(
            self.endpoint,
            data=data,
            method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.options.token}"},
        )
        try:
            with OPENER.open(request, timeout=TIMEOUT) as response:
                answer = json.loads(response.read())
            held, conflicts = set(answer["ids"]), answer["conflicts"]
            if self.told and "run" in answer:
                self.told(answer["run"])
        except urllib.error.HTTPError as e:
            self.last_error = f"HTTP {e.code}: {error_text(e)}"
            return ("refused" if e.code in (400, 413, 422) else "failed"), set()  # 401/403: the host may yet accept
        except (urllib.error.URLError, OSError) as e:
            self.last_error = str(getattr(e, "reason", e))
            return "failed", set()
        except (ValueError, KeyError, TypeError):
            self.last_error = "an answer that was not edge serve's (a proxy or captive portal in between?)"
            return "failed", set()
        if conflicts:
            self.outbox.count("conflicts", len(conflicts))
            self.log(
                f"the host already held {len(conflicts)} of these {self.key}' ids with other content; it kept "
                "its own (two devices sharing an outbox?)"
            )
        if len(held) < len(bodies):
            self.last_error = f"the host acknowledged {len(held)} of {len(bodies)} {self.key}"
        return "stored", held


class Reporter(Sender):
    """The reports of a run (`edge run --report-to`)."""

    def __init__(self, options: ReportOptions, log=None, told=None):
        outbox = Outbox(
            Path(options.outbox).expanduser(), "reports", options.device_id, options.outbox_limit, log=log
        )  # fails here, not later
        super().__init__(
            options,
            "/api/v1/reports",
            "reports",
            outbox,
            BATCH,
            lambda report: json.dumps(report, separators=(",", ":")),
            log,
            told=told,
        )


def _id(body: str) -> str:
    return json.loads(body)["id"]
