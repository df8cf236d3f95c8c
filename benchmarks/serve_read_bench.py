"""Do reads of a full database keep up, and keep out of the way of ingestion? `edge serve` on loopback,
devices posting at a steady 2,000 reports/s while dashboards poll, first on an empty database (the baseline,
same run), then on one holding 1,000,000 reports.

    python benchmarks/serve_read_bench.py                         # 1,000,000 reports, 100 devices, 30 s a phase
    python benchmarks/serve_read_bench.py --reports 200000 --seconds 10
    python benchmarks/serve_read_bench.py --db /tmp/read-bench --rounds 3   # keep the 4 GB fill for the next run
    python benchmarks/serve_read_bench.py --postgres              # and the same against a throwaway PostgreSQL

Devices are open-loop: each sends a batch on a fixed schedule, from its own point in that schedule (as
devices started at different times), and latency counts from when it was due, so a stalled server shows
up as latency rather than as fewer requests. Their windows start after every window the database holds,
as devices reporting on. Every client connects before the load starts, and the first
--warmup seconds of a phase are not counted: 100 devices connecting in the same quarter second, and the
first use of every code path, put POSTs seconds behind once, a cost of starting the benchmark that
would otherwise be most of a 30 s phase's slowest 1%. A dashboard does what the page does every 5 s: the device
list, one device's reports and its field metrics; the reports are its last 500 (1.5 MB) at the first
refresh, then those that ended after the newest it holds (--reread: all 500 every time, as the page did
before). A probe reads the device list alone, four times a second, for enough samples to tell a p99.
--rounds N takes N phases on each database, in turns, and judges by their medians: single phases on a
shared machine vary 2-3x. With --db the filled database is kept and reused (each full phase adds its
reports to it: the count is printed). The server runs one worker a CPU (--workers 1: as it was, one
process for everything, the baseline of that change). Targets: GET /api/v1/devices p99 <= 50 ms with 1,000,000 reports,
and POST p99 within 1.5x of the empty database's.

--postgres: the same phases, in the same run, against two databases of a throwaway PostgreSQL (tests/postgres.py)
on the same cores, one empty, one filled with as many reports as the SQLite one (filled anew each run: --db
keeps SQLite's only); the table gives the PostgreSQL server's CPU beside the host's, and the ratios of
PostgreSQL's p99s to SQLite's. The fill stores reports as the server does (store_posts, 500 a transaction),
from --processes processes at once.
"""

import argparse
import hashlib
import http.client
import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.serve_bench import postgres_pid, process_cpu, report_texts, summary  # noqa: E402
from edge.report import make_report  # noqa: E402
from edge.server.store import create_token, open_db, open_reader, store_posts  # noqa: E402
from edge.version import cpu_name  # noqa: E402
from tests.server import Server, cpu_seconds  # noqa: E402  (the real server process, as the tests start it)


def fill(target, devices: list[str], total: int, processes: int) -> float:
    """`total` reports spread over the devices, stored as the server stores them, from `processes` processes
    (a device's reports all from one); seconds it took."""
    open_db(target).close()  # the tables, made once
    started = time.perf_counter()
    fillers = [
        multiprocessing.Process(target=fill_devices, args=(target, devices[i::processes], total // len(devices)))
        for i in range(processes)
    ]
    for f in fillers:
        f.start()
    for f in fillers:
        f.join()
        assert f.exitcode == 0, f"a fill process failed ({f.exitcode})"
    return time.perf_counter() - started


def fill_devices(target, devices: list[str], per_device: int) -> None:
    db, base, t = open_db(target), summary(), 1.7e9
    for name in devices:
        sha, run_id = hashlib.sha256(name.encode()).hexdigest(), uuid.uuid4().hex
        for first in range(0, per_device, 500):
            batch = [
                make_report(base, name, run_id, seq, sha, t + seq * 10, t + seq * 10 + 10)
                for seq in range(first, min(first + 500, per_device))
            ]
            store_posts(db, [("reports", name, batch)])
    db.close()


def scalar(target, sql: str):
    """The one value a query of the store at `target` (a SQLite file or a PostgreSQL URL) reads."""
    db = open_reader(target)
    try:
        return db.execute(sql).fetchone()[0]
    finally:
        db.close()


def server_cpu(server: Server) -> dict:
    """CPU seconds of each of the server's workers."""
    return {pid: cpu_seconds(pid) for pid in server.workers()}


def post_loop(port, name, token, batch, rate, seconds, start_at, phase, warmup, first, out):
    """One device: a batch every batch/rate seconds, from `phase` (0-1) of that into the run (devices
    started at different times, as in the field: all posting at the same instant would be a burst every
    interval), latency from when it was due; its windows start at `first`."""
    texts = report_texts(name, first)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.connect()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    interval, latencies, acked, errors = batch / rate, [], 0, 0
    due = start_at + phase * interval
    while due < start_at + seconds:
        time.sleep(max(0.0, due - time.time()))
        body = ('{"reports":[' + ",".join(next(texts) for _ in range(batch)) + "]}").encode()
        try:
            conn.request("POST", "/api/v1/reports", body, headers)
            response = conn.getresponse()
            answer = response.read()
        except OSError:
            errors += 1
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        else:
            if response.status == 200:
                acked += len(json.loads(answer)["ids"])
            else:
                errors += 1
        if due >= start_at + warmup:
            latencies.append((time.time() - due) * 1000)
        due += interval
    out.append(("post", latencies, acked, errors))


def poll_loop(port, token, device, every, seconds, start_at, warmup, out, probe=False, reread=False):
    """One dashboard: what the page reads every refresh (a probe: the device list only), timed per request.
    As the page, it reads the device's latest 500 reports once, then those that ended after the newest
    it holds (`reread`: all 500 every time, as the page did before)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.connect()
    headers = {"Authorization": f"Bearer {token}"}
    times = {"devices": [], "reports": [], "field": []}
    paths = [
        ("devices", "/api/v1/devices"),
        ("reports", f"/api/v1/devices/{device}/reports?limit=500"),
        ("field", f"/api/v1/devices/{device}/field"),
    ][: 1 if probe else 3]
    due, newest = start_at, None
    while due < start_at + seconds:
        time.sleep(max(0.0, due - time.time()))
        for key, path in paths:
            since = f"&since={newest!r}" if key == "reports" and newest is not None else ""
            started = time.perf_counter()
            try:
                conn.request("GET", path + since, headers=headers)
                response = conn.getresponse()
            except OSError:  # the server let the connection go, idle for its 5 s keep-alive: as a browser, again
                conn.close()
                conn.request("GET", path + since, headers=headers)
                response = conn.getresponse()
            answer = response.read()
            assert response.status in (200, 404), (path, response.status)  # 404: the device has not reported yet
            if due >= start_at + warmup:
                times[key].append((time.perf_counter() - started) * 1000)
            if key == "reports" and response.status == 200 and not reread:
                reports = json.loads(answer)["reports"]  # as the page does
                newest = reports[-1]["window"]["end"] if reports else newest
        due += every
    out.append(("poll", times))


def client_process(port, posters, pollers, args, start_at, first, queue):
    out, threads, cpu = [], [], cpu_seconds(os.getpid())
    rate = args.rate / args.devices
    for name, token, phase in posters:
        threads.append(
            threading.Thread(
                target=post_loop,
                args=(port, name, token, args.batch, rate, args.seconds, start_at, phase, args.warmup, first, out),
            )
        )
    for token, device, phase in pollers:
        threads.append(
            threading.Thread(
                target=poll_loop,
                args=(
                    port,
                    token,
                    device,
                    args.poll_every,
                    args.seconds,
                    start_at + phase * args.poll_every,
                    args.warmup,
                    out,
                    False,
                    args.reread,
                ),
            )
        )
    if pollers:
        threads.append(
            threading.Thread(
                target=poll_loop,
                args=(port, pollers[0][0], None, args.probe_every, args.seconds, start_at, args.warmup, out, True),
            )
        )
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    queue.put(out + [("cpu", cpu_seconds(os.getpid()) - cpu)])


def phase(target, posters, reader, args, database_pid: int | None = None) -> dict:
    """One load phase against a fresh server process on `target` (a SQLite file or a PostgreSQL URL, whose
    server's first process is `database_pid`)."""
    count = lambda: scalar(target, "SELECT COUNT(*) FROM reports")  # noqa: E731
    before = count()
    # windows after every one held (as devices reporting on): a dashboard's `since` then means what it would
    first = (scalar(target, "SELECT MAX(latest_end) FROM devices") or 1.8e9) + 1
    server = Server(target, None, "--workers", str(args.workers)).start()
    database_cpu = lambda: process_cpu(database_pid) if database_pid else 0.0  # noqa: E731
    cpu, database_before = server_cpu(server), database_cpu()  # its start-up is not the load's
    queue: multiprocessing.Queue = multiprocessing.Queue()
    start_at = time.time() + 1.5
    pollers = [(reader, posters[i % len(posters)][0], i / args.dashboards) for i in range(args.dashboards)]
    posters = [(name, token, i / len(posters)) for i, (name, token) in enumerate(posters)]
    # The dashboards poll from a process of their own, as a browser elsewhere would: in a process with the
    # posting threads, their timings would count waits for that process's own interpreter lock.
    groups: list[tuple[list, list]] = [(posters[i :: args.processes], []) for i in range(args.processes)]
    groups.append(([], pollers))
    clients = [
        multiprocessing.Process(target=client_process, args=(server.port, p, d, args, start_at, first, queue))
        for p, d in groups
    ]
    try:
        for c in clients:
            c.start()
        results = [r for _ in clients for r in queue.get()]
        for c in clients:
            c.join()
        cpu = {pid: seconds - cpu[pid] for pid, seconds in server_cpu(server).items()}
        database_seconds = database_cpu() - database_before
    finally:
        server.stop()
    posts = np.concatenate([r[1] for r in results if r[0] == "post"])
    acked = sum(r[2] for r in results if r[0] == "post")
    stored = count() - before
    # CPU as a share of one core over the load (the 1.5 s before it, idle but for the clients starting)
    row = {
        "reports_before": before,
        "server_cpu": sum(cpu.values()) / args.seconds,
        "busiest_worker_cpu": max(cpu.values()) / args.seconds,
        "database_cpu": database_seconds / args.seconds,
        "clients_cpu": sum(r[1] for r in results if r[0] == "cpu") / args.seconds,
        "reports_per_s": stored / args.seconds,
        "acked": acked,
        "lost": acked - stored,
        "post_errors": sum(r[3] for r in results if r[0] == "post"),
        "post_p50_ms": float(np.percentile(posts, 50)),
        "post_p99_ms": float(np.percentile(posts, 99)),
    }
    for key in ("devices", "reports", "field"):
        times = np.concatenate([r[1][key] for r in results if r[0] == "poll"])
        row[f"get_{key}_p50_ms"], row[f"get_{key}_p99_ms"] = (float(np.percentile(times, q)) for q in (50, 99))
    return row


def sessions(target, names: list[str]) -> tuple[list, str]:
    """New tokens for the devices and a dashboard (a kept database's went with the run that made them)."""
    db = open_db(target)
    try:
        db.execute("DELETE FROM tokens")
        return [(n, create_token(db, n)) for n in names], create_token(db, "dashboard", "reader")
    finally:
        db.close()


def fill_sqlite(work: Path, names: list[str], args) -> str:
    """The SQLite databases in `work`: the empty one made anew, the full one filled unless kept; what was done."""
    for old in work.glob("empty.db*"):  # the baseline starts empty every run
        old.unlink()
    filled = None if (work / "full.db").exists() else fill(work / "full.db", names, args.reports, args.processes)
    size = sum(f.stat().st_size for f in work.glob("full.db*")) / 1e9
    return f"filled in {filled:.0f} s ({size:.2f} GB)" if filled is not None else f"reused ({size:.2f} GB)"


def fill_postgres(target: str, names: list[str], args) -> str:
    """The full PostgreSQL database filled, then vacuumed and analysed (as autovacuum would have done over the
    months a fleet took to send it, rather than during the first phase); what it took."""
    filled = fill(target, names, args.reports, args.processes)
    db, started = open_db(target), time.perf_counter()
    try:
        db.execute("VACUUM ANALYZE")
        vacuumed = time.perf_counter() - started
        size = db.execute("SELECT pg_database_size(current_database())").fetchone()[0] / 1e9
    finally:
        db.close()
    return f"filled in {filled:.0f} s, VACUUM ANALYZE {vacuumed:.0f} s ({size:.2f} GB)"


def print_phases(backend: str, fill_note: str, rows: list, rounds: int) -> dict:
    """A store's phases, and its verdicts on the targets: the medians they were judged by."""
    fills = next(r["reports_before"] for _, x, r in rows if x == "full")
    print(f"\n{backend}: {fills:,} reports {fill_note}")
    print(
        f"{'database':>18}{'reports/s':>11}{'lost':>6}{'POST p50':>10}{'POST p99':>10}{'devices p50':>13}"
        f"{'devices p99':>13}{'reports p99':>13}{'field p99':>11}{'server CPU':>12}{'busiest worker':>16}"
        f"{'database CPU':>14}{'clients CPU':>13}"
    )
    for _, label, r in rows:
        label = "empty" if label == "empty" else f"{r['reports_before']:,} reports"
        print(
            f"{label:>18}{r['reports_per_s']:>11,.0f}{r['lost']:>6}{r['post_p50_ms']:>10.2f}{r['post_p99_ms']:>10.2f}"
            f"{r['get_devices_p50_ms']:>13.2f}{r['get_devices_p99_ms']:>13.2f}{r['get_reports_p99_ms']:>13.2f}"
            f"{r['get_field_p99_ms']:>11.2f}{r['server_cpu']:>12.0%}{r['busiest_worker_cpu']:>16.0%}"
            f"{r['database_cpu']:>14.0%}{r['clients_cpu']:>13.0%}"
        )
    median = lambda label, key: float(np.median([r[key] for _, x, r in rows if x == label]))  # noqa: E731
    judged = {
        "devices_p99": median("full", "get_devices_p99_ms"),
        "post_p99_full": median("full", "post_p99_ms"),
        "post_p99_empty": median("empty", "post_p99_ms"),
        "lost": sum(r["lost"] for *_, r in rows),
    }
    ratio = judged["post_p99_full"] / judged["post_p99_empty"]
    verdict = lambda ok: "PASS" if ok else "FAIL"  # noqa: E731
    of = f"the median of {rounds} phases" if rounds > 1 else "one phase"
    print(
        f"GET /api/v1/devices p99 at {fills:,}+ reports, {of}: {judged['devices_p99']:.1f} ms (target <= 50): "
        f"{verdict(judged['devices_p99'] <= 50)}"
    )
    print(
        f"POST p99 full / empty, {of} each: {ratio:.2f} (target <= 1.5): {verdict(ratio <= 1.5)}; lost: "
        f"{judged['lost']} (must be 0)"
    )
    return {**judged, "post_p99_ratio": ratio}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reports", type=int, default=1_000_000, help="stored before the second phase")
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--rate", type=float, default=2000.0, help="reports/s, all devices together")
    parser.add_argument("--batch", type=int, default=5, help="reports a POST")
    parser.add_argument("--dashboards", type=int, default=4)
    parser.add_argument("--poll-every", type=float, default=5.0, help="seconds between a dashboard's refreshes")
    parser.add_argument(
        "--reread",
        action="store_true",
        help="dashboards read a device's latest 500 reports "
        "at every refresh, as the page did before it asked for only those that came since",
    )
    parser.add_argument("--probe-every", type=float, default=0.25, help="seconds between the probe's reads")
    parser.add_argument("--seconds", type=float, default=30.0, help="a phase")
    parser.add_argument("--rounds", type=int, default=1, help="phases on each database, in turns; medians judge")
    parser.add_argument("--processes", type=int, default=2, help="client processes posting, and filling")
    parser.add_argument("--workers", type=int, default=multiprocessing.cpu_count(), help="edge serve --workers")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds at the start of a phase not counted")
    parser.add_argument(
        "--db",
        type=Path,
        help="a folder to keep the filled database in, reused by the next run "
        "with the same --db (it grows by what each full phase stores)",
    )
    parser.add_argument("--postgres", action="store_true", help="also a throwaway PostgreSQL (tests/postgres.py)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    work = args.db or Path(tempfile.mkdtemp())
    work.mkdir(parents=True, exist_ok=True)
    names, load_before, cluster = [f"dev{i:03d}" for i in range(args.devices)], os.getloadavg(), None
    stores = {"sqlite": {"empty": work / "empty.db", "full": work / "full.db"}}
    database_pids: dict[str, int | None] = {"sqlite": None}
    try:
        notes = {"sqlite": fill_sqlite(work, names, args)}
        if args.postgres:
            from tests.postgres import Cluster

            cluster = Cluster()
            stores["postgres"] = {"empty": cluster.url(), "full": cluster.url()}
            database_pids["postgres"] = postgres_pid(cluster)
            notes["postgres"] = fill_postgres(stores["postgres"]["full"], names, args)
        tokens = {(backend, label): sessions(t, names) for backend, ts in stores.items() for label, t in ts.items()}
        rows = []
        for _ in range(args.rounds):
            for backend, targets in stores.items():
                for label, target in targets.items():
                    row = phase(target, *tokens[backend, label], args, database_pids[backend])
                    rows.append((backend, label, row))
    finally:
        if cluster is not None:
            cluster.stop()
        if args.db is None:
            shutil.rmtree(work)  # the full database is gigabytes
    print(
        f"\n{args.devices} devices posting {args.rate:,.0f} reports/s in batches of {args.batch}; {args.dashboards} "
        f"dashboards polling every {args.poll_every:g} s, a probe reading the device list every "
        f"{args.probe_every:g} s; edge serve --workers {args.workers}; {args.seconds:g} s a phase "
        f"(the first {args.warmup:g} not counted), loopback, {multiprocessing.cpu_count()} CPUs ({cpu_name()}); "
        f"load average {load_before[0]:.2f} before, {os.getloadavg()[0]:.2f} after"
    )
    judged = {
        backend: print_phases(backend, notes[backend], [r for r in rows if r[0] == backend], args.rounds)
        for backend in stores
    }
    if args.postgres:
        ratio = lambda key: judged["postgres"][key] / judged["sqlite"][key]  # noqa: E731
        print(
            f"\nPostgreSQL against SQLite, full: GET /api/v1/devices p99 {ratio('devices_p99'):.2f}, POST p99 "
            f"{ratio('post_p99_full'):.2f}; empty: POST p99 {ratio('post_p99_empty'):.2f}"
        )
    if args.json:
        args.json.write_text(json.dumps({"phases": rows, "judged": judged}, indent=2))


if __name__ == "__main__":
    main()
