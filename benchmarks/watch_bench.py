"""Does watching a large fleet cost the host? `edge serve` on loopback holding 10,000 devices (each with its
latest report and the health figures a Pi sends): Prometheus scraping GET /metrics, against the dashboard's
device list (GET /api/v1/devices) in the same run as the baseline, and the alert watcher's look at every device
(edge.server.alerts.check, every 5 s on one worker).

    python benchmarks/watch_bench.py                      # 10,000 devices, 20 scrapes
    python benchmarks/watch_bench.py --devices 1000 --scrapes 50
    python benchmarks/watch_bench.py --postgres           # the same against a throwaway PostgreSQL

Target: a scrape of 10,000 devices well inside Prometheus' default 10 s timeout and a few percent of a core at
a 15 s scrape interval; the watcher a few percent of a core at its 5 s tick.
"""

import argparse
import hashlib
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.serve_bench import summary  # noqa: E402
from edge.report import make_report  # noqa: E402
from edge.server import alerts, store  # noqa: E402
from edge.version import cpu_name  # noqa: E402
from tests.server import Server, cpu_seconds, token  # noqa: E402

HEALTH = {
    "cpu_temp_c": 61.3,
    "throttled_now": [],
    "throttled_since_boot": ["soft-temperature-limit"],
    "cpu_percent": 72.1,
    "memory_percent": 40.2,
    "disk_free_mb": 20480.5,
    "disk_percent": 30.1,
    "camera_fps": 29.9,
    "camera_fps_asked": 30.0,
    "uptime_s": 86400.0,
    "run_s": 3600.0,
    "restarts": 0,
}
SCRAPE_EVERY, TICK = 15.0, alerts.TICK  # seconds: Prometheus' common interval; the watcher's


def fill(target, devices: int) -> None:
    """One report a device, with health, stored as the server stores them, 500 devices a transaction."""
    db, base = store.open_db(target), summary()
    names = [f"pi-{n:05d}" for n in range(devices)]
    for first in range(0, devices, 500):
        posts: list[tuple[str, str | None, list[dict]]] = []
        for name in names[first : first + 500]:
            report = make_report(
                base, name, uuid.uuid4().hex, 0, hashlib.sha256(name.encode()).hexdigest(), 1.7e9, 1.7e9 + 10
            )
            posts.append(("reports", name, [{**report, "health": HEALTH}]))
        store.store_posts(db, posts)
    db.close()


def timed_gets(server: Server, path: str, reader: str, n: int) -> dict:
    """n GETs of `path`: p50 and p99 in ms to the answer's last byte (not parsed: a client's JSON parsing is not
    the server's time), the answer's bytes, the server's CPU seconds a GET."""
    before, times, size = sum(map(cpu_seconds, server.workers())), [], 0
    request = urllib.request.Request(server.url + path, headers={"Authorization": f"Bearer {reader}"})
    for _ in range(n):
        started = time.perf_counter()
        with urllib.request.urlopen(request, timeout=120) as answer:
            size = len(answer.read())
        times.append((time.perf_counter() - started) * 1000)
    cpu = (sum(map(cpu_seconds, server.workers())) - before) / n
    return {"p50": float(np.percentile(times, 50)), "p99": float(np.percentile(times, 99)), "bytes": size, "cpu": cpu}


def watcher_cost(target, n: int) -> float:
    """Seconds a look at every device takes (median of n), none of them raising anything."""
    db = store.open_db(target)
    times = []
    for _ in range(n):
        started = time.perf_counter()
        list(alerts.check(db, time.time()))  # a generator: its work is done as it is read
        times.append(time.perf_counter() - started)
    db.close()
    return float(np.median(times))


def bench(target, args) -> tuple[list[tuple], float]:
    started = time.perf_counter()
    fill(target, args.devices)
    print(f"filled {args.devices:,} devices in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    reader = token(target, "ops", "--reader")
    with Server(target, None, "--workers", "1").start() as server:
        server.get("/metrics", reader)  # the first use of every code path
        scrape = timed_gets(server, "/metrics", reader, args.scrapes)
        listing = timed_gets(server, "/api/v1/devices", reader, max(3, args.scrapes // 4))
    look = watcher_cost(target, 5)
    return [
        ("GET /metrics", scrape["p50"], scrape["p99"], scrape["bytes"], 100 * scrape["cpu"] / SCRAPE_EVERY),
        ("GET /api/v1/devices (baseline)", listing["p50"], listing["p99"], listing["bytes"], None),
        ("alert watcher, one look", look * 1000, None, None, 100 * look / TICK),
    ], scrape["p50"] / listing["p50"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--scrapes", type=int, default=20)
    parser.add_argument("--postgres", action="store_true", help="a throwaway PostgreSQL instead of a SQLite file")
    args = parser.parse_args()
    print(f"CPU: {cpu_name()}; {args.devices:,} devices, one report each with health figures")
    if args.postgres:
        from tests.postgres import Cluster

        cluster = Cluster()
        cluster.up()
        try:
            rows, ratio = bench(cluster.url(), args)
        finally:
            cluster.down()
    else:
        with tempfile.TemporaryDirectory() as work:
            rows, ratio = bench(Path(work) / "edge.db", args)
    print(f"{'':32}{'p50 ms':>10}{'p99 ms':>10}{'bytes':>12}{'core %':>10}")
    for name, p50, p99, size, core in rows:
        cells = [f"{p50:10.1f}", f"{p99:10.1f}" if p99 else f"{'':10}", f"{size:12,}" if size else f"{'':12}"]
        print(f"{name:32}" + "".join(cells) + (f"{core:10.2f}" if core is not None else ""))
    print(f"ratio GET /metrics p50 / GET /api/v1/devices p50: {ratio:.2f}")
    print(f"core %: a scrape's server CPU every {SCRAPE_EVERY:g} s; the watcher's look every {TICK:g} s")


if __name__ == "__main__":
    main()
