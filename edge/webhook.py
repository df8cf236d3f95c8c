"""Events POSTed as JSON to a web hook (`edge run --webhook URL`: Node-RED, Home Assistant, a chat's incoming
hook), one a request, {"event": KIND, ...}, from a thread of their own.

A hook that is down, answers 5xx, 408 or 429, or hangs (TIMEOUT) is tried again, waiting 0.5 s doubling to
30 s, the event kept; one that refuses it otherwise (4xx) drops it, counted `rejected`. Events wait in a
queue of QUEUE; past it the oldest goes, counted `dropped`: the newest call is the one worth sending.
Delivery is at least once: a hook that took an event and then dropped the connection before its answer gets it
again. Redirects are not followed (a hook's URL is often its secret, and would go along), nor proxy settings: a hook
is on the network the device or host is on. One connection is kept open while the hook keeps it.
"""

import http.client
import json
import threading
import time
import urllib.parse
from collections import deque

from edge.errors import OptionError

QUEUE = 1000  # events waiting
TIMEOUT = 5.0  # seconds for one POST
BACKOFF_FIRST, BACKOFF_MOST = 0.5, 30.0  # seconds
RETRIED = {408, 429}  # 4xx answers that say "later", not "no"
REFUSED = {401, 403, 404}  # the URL or its secret is wrong: a retry will not mend it


def webhook_url(url: str, flag: str = "--webhook") -> str:
    """An http(s) URL to POST events to (given as `flag`). Its path and query may be its secret: never echoed."""
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 -- raises on a port that is not a number
        good = parts.scheme in ("http", "https") and bool(parts.hostname) and not parts.fragment
    except ValueError:
        good = False
    if not good:
        raise OptionError(f"{flag}: give an http(s):// URL to POST events to, e.g. http://192.168.1.20:1880/edge")
    return url


def shown_webhook(url: str) -> str:
    """A webhook's URL as logs and summaries name it: scheme and host, the rest (often the secret) hidden."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}/***"


class Hook:
    """One web hook; `send` never blocks, `close` sends what it can in time and counts. `flag`: the option that
    gave the URL, as the log names it; `announce`: a status event "online" first and "offline" last (a device's;
    the host's alerts have none)."""

    def __init__(self, url: str, log, flag: str = "--webhook", announce: bool = True):
        self.url, self.shown, self.log, self.flag, self.announce = url, shown_webhook(url), log, flag, announce
        self.envvar = "EDGE_" + flag.removeprefix("--").upper().replace("-", "_")  # where the URL is kept secret
        self.counts = {"delivered": 0, "rejected": 0, "dropped": 0, "failures": 0}
        self.refused: str | None = None  # the hook's answer, once it refused the URL
        self._queue: deque = deque()
        self._wake = threading.Condition()
        self._closing: float | None = None  # the monotonic time past which nothing more is tried
        self._said = False
        self._connection: http.client.HTTPConnection | None = None  # kept open between events (its thread's)
        parts = urllib.parse.urlsplit(url)
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._thread = threading.Thread(target=self._run, name="edge-webhook", daemon=True)
        self._thread.start()
        if announce:
            self.send("status", "online")

    def send(self, kind: str, event: dict | str) -> None:
        """Queue `event` (a dict, or a word such as a status) as {"event": KIND, ...}."""
        body = {"event": kind, **(event if isinstance(event, dict) else {"status": event})}
        with self._wake:
            if len(self._queue) >= QUEUE:
                self._queue.popleft()
                self.counts["dropped"] += 1
            self._queue.append(json.dumps(body).encode())
            self._wake.notify()

    def close(self, wait: float) -> dict:
        """Send what is queued for up to `wait` seconds (a hung hook takes at most TIMEOUT more), then stop;
        the counts, with what was left unsent."""
        if self.announce:
            self.send("status", "offline")
        with self._wake:
            self._closing = time.monotonic() + wait
            self._wake.notify()
        self._thread.join(wait + TIMEOUT + 1)
        with self._wake:
            return {"url": self.shown, **self.counts, "unsent": len(self._queue), "refused": self.refused}

    def _run(self) -> None:
        backoff = 0.0
        while True:
            with self._wake:
                while not self._queue and self._closing is None:
                    self._wake.wait()
                if not self._queue or (self._closing is not None and time.monotonic() >= self._closing):
                    self._close_connection()
                    return
                body = self._queue[0]
            done = self._send(body)
            with self._wake:
                if done:
                    self._queue.popleft()
                    backoff = 0.0
                    continue
                backoff = min(BACKOFF_MOST, max(BACKOFF_FIRST, backoff * 2))
                limit = None if self._closing is None else max(0.0, self._closing - time.monotonic())
                self._wake.wait(backoff if limit is None else min(backoff, limit))

    def _send(self, body: bytes) -> bool:
        """POST one event: True when it is done with (taken, or refused for good), False to try again."""
        try:
            status, reason = self._post(body)
        except (OSError, http.client.HTTPException) as e:
            why = str(e) or type(e).__name__
        else:
            if 200 <= status < 300:
                self.counts["delivered"] += 1
                self._said = False
                return True
            if status < 500 and status not in RETRIED:  # a redirect too: not followed
                self.counts["rejected"] += 1
                if status in REFUSED and self.refused is None:
                    self.refused = f"the web hook {self.shown} answered {status} {reason}"
                    self.log(f"{self.flag}: {self.refused}; check its URL (${self.envvar})")
                return True
            why = f"{status} {reason}"
        self.counts["failures"] += 1
        if not self._said:
            self._said = True
            self.log(f"{self.flag}: {self.shown} failed ({why}); trying again, events wait (up to {QUEUE})")
        return False

    def _post(self, body: bytes) -> tuple[int, str]:
        """(status, reason) of one POST, on the connection kept open between events: a new one a POST cost the
        hook's thread, beside the frame loop, a TCP (and perhaps a TLS) handshake an event."""
        reused = self._connection is not None
        try:
            return self._exchange(body)
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            if not reused:
                raise
            return self._exchange(body)  # the hook closed the kept connection meanwhile: once more, on a new one

    def _exchange(self, body: bytes) -> tuple[int, str]:
        if self._connection is None:
            parts = urllib.parse.urlsplit(self.url)
            kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
            self._connection = kind(parts.hostname or "", parts.port, timeout=TIMEOUT)
        try:
            self._connection.request("POST", self._path, body, {"Content-Type": "application/json"})
            answer = self._connection.getresponse()
            answer.read()
        except BaseException:
            self._close_connection()
            raise
        if answer.will_close:
            self._close_connection()
        return answer.status, answer.reason

    def _close_connection(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
