"""How long a host takes to answer, by endpoint, over all its workers: a histogram in memory the workers share
(made before they fork, like edge.server.state's marks), which GET /metrics shows. A scrape reaches one
worker, and each has its own counts: kept apart, they would seem to jump back and forth between scrapes.
"""

import multiprocessing
import time

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)  # seconds
SLOTS = 64  # endpoints a host may time: more than it has
WIDTH = len(BUCKETS) + 2  # an endpoint's counts a bucket, past the last bucket, and its sum of seconds


class Timings:
    """Requests' seconds, a histogram an endpoint (by slot), added to by every worker under one lock."""

    def __init__(self):
        self._values = multiprocessing.RawArray("d", SLOTS * WIDTH)
        self._lock = multiprocessing.Lock()

    def add(self, slot: int, seconds: float) -> None:
        bucket = next((i for i, bound in enumerate(BUCKETS) if seconds <= bound), len(BUCKETS))
        at = slot * WIDTH
        with self._lock:
            self._values[at + bucket] += 1
            self._values[at + WIDTH - 1] += seconds

    def read(self, slot: int) -> tuple[list[float], float]:
        """(requests at most each of BUCKETS' seconds and in all, cumulative as Prometheus has them; their sum)."""
        at = slot * WIDTH
        with self._lock:
            counts, total = self._values[at : at + WIDTH - 1], self._values[at + WIDTH - 1]
        cumulative, running = [], 0.0
        for count in counts:
            running += count
            cumulative.append(running)
        return cumulative, total


class Timed:
    """ASGI middleware: each HTTP request's seconds, from its start to its answer's last byte, added to
    `timings` under its endpoint's slot (`slots`: endpoint -> slot; any other, a 404 say, under `other`)."""

    def __init__(self, app, timings: Timings, slots: dict, other: int):
        self.app, self.timings, self.slots, self.other = app, timings, slots, other

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:  # the router leaves the endpoint it chose in the scope
            self.timings.add(self.slots.get(scope.get("endpoint"), self.other), time.perf_counter() - start)
