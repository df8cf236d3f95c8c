"""Events POSTed as JSON to a web hook (`edge run --webhook URL`: Node-RED, Home Assistant, a chat's incoming
hook), one a request, {"event": KIND, ...}, from a thread of their own.

A hook that is down, answers 5xx, 408 or 429, or hangs (TIMEOUT) is tried again, waiting 0.5 s doubling to
30 s, the event kept; one that refuses it otherwise (4xx) drops it, counted `rejected`. Events wait in a
queue of QUEUE; past it the oldest goes, counted `dropped`: the newest call is the one worth sending.
Redirects are not followed (a hook's URL is often its secret, and would go along).
"""

import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import deque

from edge.errors import OptionError
from edge.host_client import OPENER

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
        request = urllib.request.Request(self.url, body, {"Content-Type": "application/json"}, method="POST")
        try:
            with OPENER.open(request, timeout=TIMEOUT) as answer:
                answer.read()
            self.counts["delivered"] += 1
            self._said = False
            return True
        except urllib.error.HTTPError as e:
            if e.code < 500 and e.code not in RETRIED:  # a redirect too: not followed
                self.counts["rejected"] += 1
                if e.code in REFUSED and self.refused is None:
                    self.refused = f"the web hook {self.shown} answered {e.code} {e.reason}"
                    self.log(f"{self.flag}: {self.refused}; check its URL (${self.envvar})")
                return True
            why = f"{e.code} {e.reason}"
        except (urllib.error.URLError, OSError, ValueError) as e:
            why = str(getattr(e, "reason", None) or e)
        self.counts["failures"] += 1
        if not self._said:
            self._said = True
            self.log(f"{self.flag}: {self.shown} failed ({why}); trying again, events wait (up to {QUEUE})")
        return False
