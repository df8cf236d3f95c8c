"""Does removing old history (`edge serve --keep-days N`) hold ingestion? A store holding 1,000,000 reports, 90% of
them received 40 days ago, served by a real `edge serve` on loopback while devices post at a steady 2,000 reports/s:
first without --keep-days (the baseline, same run, same store), then a copy of that store with --keep-days 30, whose
sweep at start removes the old 900,000 while the devices post.

    python benchmarks/retention_bench.py                        # 1,000,000 reports, 90% old, 60 s a phase
    python benchmarks/retention_bench.py --reports 100000 --seconds 20
    python benchmarks/retention_bench.py --postgres             # and the same against a throwaway PostgreSQL

The store is filled as benchmarks/serve_read_bench.py fills its (its `fill`: 100 devices, store_posts, 500 a
transaction), then one UPDATE sets the `received` of the oldest --old-share of the reports (by rowid, the order they
came) 40 days back: a fleet whose first months are past --keep-days. SQLite: the WAL checkpointed, the file copied for
the second phase. PostgreSQL: after the UPDATE, VACUUM FULL ANALYZE (the UPDATE leaves every old row twice, and its
indexes twice the size: a store filled over months has neither), then the second phase's database is
`CREATE DATABASE ... TEMPLATE` of the first.

Devices post as serve_read_bench's do (its post_loop: open loop, a batch on a fixed schedule, latency from when it
was due, the first --warmup seconds not counted); each POST is timed by when it was due, so the phase with the sweep
is split into the POSTs due while the sweep ran and those due after it ended. The sweep starts with the server's
checkpointing worker, before the devices (the load starts 1.5 s after /healthz answers, and its first --warmup
seconds are not counted); it ends with the server's line "--keep-days 30: removed N reports ..." on its stderr, whose
time is taken as it comes. Its start is taken as the first time the oldest rowid held changes (polled every 20 ms:
the first batch's commit). Lost: reports answered 200 that are not in the store (the removed ones accounted for).
"""

import argparse
import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.serve_bench import postgres_pid, process_cpu  # noqa: E402
from benchmarks.serve_read_bench import fill, fill_postgres, post_loop, scalar, sessions  # noqa: E402
from edge.server import retention  # noqa: E402
from edge.server.database import is_url  # noqa: E402
from edge.server.store import open_db, open_reader  # noqa: E402
from edge.version import cpu_name  # noqa: E402
from tests.server import Server, cpu_seconds  # noqa: E402  (the real server process, as the tests start it)

DAY = 86_400
AGE = 40  # days the old reports are set back
KEEP = 30  # --keep-days


def make_old(target, share: float) -> int:
    """The `received` of the oldest `share` of the reports set AGE days back in one UPDATE; then, SQLite, its WAL
    checkpointed into the file (to be copied), PostgreSQL, the table rewritten and analysed: how many are old."""
    db = open_db(target)
    try:
        total = db.execute("SELECT COUNT(*) FROM reports").fetchone()[0]
        old = int(total * share)
        cut = db.execute("SELECT rowid FROM reports ORDER BY rowid LIMIT 1 OFFSET ?", (old - 1,)).fetchone()[0]
        db.execute("UPDATE reports SET received = received - ? WHERE rowid <= ?", (AGE * DAY, cut))
        if is_url(target):
            db.execute("VACUUM FULL ANALYZE reports")
        else:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return old
    finally:
        db.close()


def machine_cpu() -> float:
    """CPU seconds every process of the machine has used, all cores (/proc/stat's first line, less idle and iowait):
    what the benchmark's own processes did not use of it is others' work, which a shared machine's figures carry."""
    ticks = [int(t) for t in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(ticks[:8]) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def sweep_with(work: Path, batch: int, pause: float) -> None:
    """Every `edge serve` started from now on sweeps `batch` rows a transaction, pausing at least `pause` s between
    (retention.BATCH and PAUSE, the defaults of its `sweep`): a sitecustomize on PYTHONPATH sets them as the
    server's Python starts, before it forks its workers; edge/server/retention.py stays as it is."""
    folder = work / "sweep"
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(
        f"import edge.server.retention as r\n\nr.sweep.__defaults__ = ({batch}, {pause}, None)\n"
    )
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))


def copy_postgres(url: str) -> str:
    """A new database of the same cluster made from `url`'s (no connection to it may be open): its URL."""
    import psycopg

    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}_b" TEMPLATE "{name}"')
    return f"{base}/{name}_b"


def drop_postgres(url: str) -> None:
    import psycopg

    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def client_process(port, posters, args, start_at, first, queue):
    """serve_read_bench's devices, each with a list of its own: (its phase, its latencies, acked, errors)."""
    rate, runs, cpu = args.rate / args.devices, [], cpu_seconds(os.getpid())
    for name, token, phase in posters:
        out: list = []
        task = (port, name, token, args.batch, rate, args.seconds, start_at, phase, args.warmup, first, out)
        runs.append((phase, out, threading.Thread(target=post_loop, args=task)))
    for *_, t in runs:
        t.start()
    for *_, t in runs:
        t.join()
    queue.put(([(phase, *out[0][1:]) for phase, out, _ in runs], cpu_seconds(os.getpid()) - cpu))


def dues(start_at: float, phase: float, interval: float, seconds: float, warmup: float) -> list[float]:
    """When each of a device's counted POSTs was due: post_loop's schedule, added up as it adds it."""
    due, counted = start_at + phase * interval, []
    while due < start_at + seconds:
        if due >= start_at + warmup:
            counted.append(due)
        due += interval
    return counted


class Watch:
    """The server's output read as it comes (the sweep's line timed), and the sweep's first batch: when the oldest
    rowid held first changes."""

    def __init__(self, server: Server, target, oldest: int | None):
        """`oldest`: the rowid oldest before the server started, None to watch only its output."""
        self.lines: list[tuple[float, str]] = []
        self.began: float | None = None
        self.stopped = threading.Event()
        threads = [
            threading.Thread(target=self._read, args=(stream,), daemon=True)
            for stream in (server.process.stdout, server.process.stderr)
        ]
        if oldest is not None:
            threads.append(threading.Thread(target=self._first_batch, args=(target, oldest), daemon=True))
        for t in threads:
            t.start()

    def _read(self, stream) -> None:
        for line in iter(stream.readline, b""):
            self.lines.append((time.time(), line.decode(errors="replace").rstrip()))

    def _first_batch(self, target, oldest: int) -> None:
        db = open_reader(target)
        try:
            while not self.stopped.wait(0.02):
                if db.execute("SELECT MIN(rowid) FROM reports").fetchone()[0] != oldest:
                    self.began = time.time()
                    return
        finally:
            db.close()

    def swept(self) -> tuple[float, int] | None:
        """(when, reports removed) of the sweep's line, once logged."""
        for at, line in self.lines:
            if line.startswith(f"--keep-days {KEEP}: removed "):
                return at, int(line.split()[3].replace(",", ""))
            if line.startswith(f"--keep-days {KEEP}: "):
                raise RuntimeError(f"the sweep failed: {line}")
        return None


def phase(target, posters, args, old_cut: int | None, keep: bool, database_pid: int | None = None) -> dict:
    """One load phase against a fresh server on `target`, with --keep-days KEEP if `keep` (waiting for its sweep to
    end, load or not): the POSTs' latencies split by whether they were due before the sweep's end."""
    count = lambda: scalar(target, "SELECT COUNT(*) FROM reports")  # noqa: E731
    before = count()
    first = (scalar(target, "SELECT MAX(latest_end) FROM devices") or 1.8e9) + 1
    extra = ("--keep-days", str(KEEP)) if keep else ()
    database_cpu = lambda: process_cpu(database_pid) if database_pid else 0.0  # noqa: E731
    oldest = scalar(target, "SELECT MIN(rowid) FROM reports") if keep else None
    launched = time.time()
    server = Server(target, None, "--workers", str(args.workers), *extra).start()
    watch = Watch(server, target, oldest)
    ready = time.time()
    cpu, database_before, machine_before = sum(map(cpu_seconds, server.workers())), database_cpu(), machine_cpu()
    start_at = ready + 1.5
    queue: multiprocessing.Queue = multiprocessing.Queue()
    posters = [(name, token, i / len(posters)) for i, (name, token) in enumerate(posters)]
    clients = [
        multiprocessing.Process(
            target=client_process, args=(server.port, posters[i :: args.processes], args, start_at, first, queue)
        )
        for i in range(args.processes)
    ]
    try:
        for c in clients:
            c.start()
        results = [queue.get() for _ in clients]
        for c in clients:
            c.join()
        ended = time.time()
        cpu = sum(map(cpu_seconds, server.workers())) - cpu
        database_seconds = database_cpu() - database_before
        machine_seconds = machine_cpu() - machine_before
        left = scalar(target, f"SELECT COUNT(*) FROM reports WHERE rowid <= {old_cut}") if keep else None
        while keep and watch.swept() is None:  # a sweep longer than the load: its end, without load
            if server.process.poll() is not None:
                raise RuntimeError("edge serve died during the sweep")
            time.sleep(0.1)
    finally:
        server.stop()
        watch.stopped.set()
    swept_at, removed = watch.swept() or (None, 0)
    interval = args.batch / (args.rate / args.devices)
    timed = [
        (due, latency)
        for devices, _ in results
        for ph, latencies, _, _ in devices
        for due, latency in zip(dues(start_at, ph, interval, args.seconds, args.warmup), latencies, strict=True)
    ]
    acked = sum(r[2] for devices, _ in results for r in devices)
    stored = count() - before + removed
    row = {
        "keep_days": KEEP if keep else None,
        "reports_before": before,
        "removed": removed,
        "acked": acked,
        "lost": acked - stored,
        "post_errors": sum(r[3] for devices, _ in results for r in devices),
        "posts": len(timed),
        "server_cpu": cpu / (ended - ready),
        "database_cpu": database_seconds / (ended - ready),
        "clients_cpu": sum(c for _, c in results) / args.seconds,
        "others_cpu": (machine_seconds - cpu - database_seconds - sum(c for _, c in results)) / (ended - ready),
        "load_seconds": args.seconds - args.warmup,
    }
    windows = {"all": [lat for _, lat in timed]}
    if keep:
        assert swept_at is not None and watch.began is not None, "no sweep seen"
        row.update(
            sweep_seconds=swept_at - watch.began,
            sweep_began_after_launch=watch.began - launched,
            sweep_outlasted_load_by=max(0.0, swept_at - ended),
            old_left_at_load_end=left,
        )
        windows["during"] = [lat for due, lat in timed if due < swept_at]
        windows["after"] = [lat for due, lat in timed if due >= swept_at]
    for key, latencies in windows.items():
        row[f"{key}_posts"] = len(latencies)
        if latencies:
            row[f"{key}_p50_ms"], row[f"{key}_p99_ms"] = (float(np.percentile(latencies, q)) for q in (50, 99))
            row[f"{key}_max_ms"] = float(np.max(latencies))
    return row


def run_backend(a, names, args, old: int, copy, drop, database_pid=None) -> dict:
    """Phase A on `a`, then phase B on its copy (made first: phase A adds reports), `drop` freeing each after."""
    b = copy(a)
    cut = scalar(b, f"SELECT rowid FROM reports ORDER BY rowid LIMIT 1 OFFSET {old - 1}")
    tokens = {label: sessions(t, names) for label, t in (("a", a), ("b", b))}
    baseline = phase(a, tokens["a"][0], args, None, False, database_pid)
    drop(a)
    swept = phase(b, tokens["b"][0], args, cut, True, database_pid)
    drop(b)
    return {"old": old, "baseline": baseline, "swept": swept}


def sqlite_copy(a: Path) -> Path:
    b = a.with_name("b.db")
    shutil.copy(a, b)  # checkpointed (make_old): the file is the whole store
    return b


def sqlite_drop(db: Path) -> None:
    for f in db.parent.glob(db.name + "*"):
        f.unlink()


def print_backend(backend: str, note: str, old: int, baseline: dict, swept: dict) -> dict:
    """The table of one store's two phases, and the ratio of their POST p99s."""
    print(f"\n{backend}: {baseline['reports_before']:,} reports, {old:,} of them received {AGE} days ago; {note}")
    print(
        f"{'phase':<34}{'removed':>10}{'sweep s':>9}{'rows/s':>9}{'POSTs':>8}{'POST p50':>10}{'POST p99':>10}"
        f"{'max':>9}{'failed':>8}{'lost':>6}{'host CPU':>10}{'db CPU':>8}{'others CPU':>12}"
    )
    db_cpu = lambda r: f"{r['database_cpu']:>8.0%}" if backend == "PostgreSQL" else f"{'':>8}"  # noqa: E731
    rate = swept["removed"] / swept["sweep_seconds"]
    rows = [
        ("A: no --keep-days", baseline, "all", "", "", ""),
        (
            f"B: --keep-days {KEEP}, during the sweep",
            swept,
            "during",
            f"{swept['removed']:,}",
            f"{swept['sweep_seconds']:.1f}",
            f"{rate:,.0f}",
        ),
        (f"B: --keep-days {KEEP}, after it", swept, "after", "", "", ""),
    ]
    for label, r, key, removed, seconds, per_s in rows:
        if not r.get(f"{key}_posts"):
            print(f"{label:<34}{removed:>10}{seconds:>9}{per_s:>9}{0:>8}  (no POSTs due in this window)")
            continue
        failed = f"{r['post_errors']}" if key != "during" else ""
        lost = f"{r['lost']}" if key != "during" else ""
        print(
            f"{label:<34}{removed:>10}{seconds:>9}{per_s:>9}{r[f'{key}_posts']:>8,}{r[f'{key}_p50_ms']:>10.2f}"
            f"{r[f'{key}_p99_ms']:>10.2f}{r[f'{key}_max_ms']:>9.1f}{failed:>8}{lost:>6}{r['server_cpu']:>10.0%}"
            f"{db_cpu(r)}{r['others_cpu']:>12.0%}"
        )
    print(
        "(failed, lost and CPU: over the whole phase, CPU as a share of one core; others: the machine's CPU that "
        "neither the host, the database server nor the clients took)"
    )
    ratio = swept.get("during_p99_ms", float("nan")) / baseline["all_p99_ms"]
    print(
        f"POST p99 during the sweep / without --keep-days: {ratio:.2f}; the sweep began "
        f"{swept['sweep_began_after_launch']:.1f} s after the server was launched"
        + (
            f", outlasted the load by {swept['sweep_outlasted_load_by']:.1f} s "
            f"({swept['old_left_at_load_end']:,} old reports left when the load ended)"
            if swept["sweep_outlasted_load_by"]
            else ""
        )
    )
    return {"ratio": ratio, "rows_per_s": rate}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reports", type=int, default=1_000_000, help="stored before the phases")
    parser.add_argument("--old-share", type=float, default=0.9, help=f"of them received {AGE} days ago")
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--rate", type=float, default=2000.0, help="reports/s, all devices together")
    parser.add_argument("--batch", type=int, default=5, help="reports a POST")
    parser.add_argument("--seconds", type=float, default=60.0, help="a phase's load")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds at the start of a phase not counted")
    parser.add_argument("--processes", type=int, default=2, help="client processes posting, and filling")
    parser.add_argument("--workers", type=int, default=multiprocessing.cpu_count(), help="edge serve --workers")
    parser.add_argument("--postgres", action="store_true", help="also a throwaway PostgreSQL (tests/postgres.py)")
    parser.add_argument("--sweep-batch", type=int, default=retention.BATCH, help="rows a sweep's transaction")
    parser.add_argument("--sweep-pause", type=float, default=retention.PAUSE, help="seconds at least between them")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp())
    if (args.sweep_batch, args.sweep_pause) != (retention.BATCH, retention.PAUSE):
        sweep_with(work, args.sweep_batch, args.sweep_pause)
    names, load_before, cluster = [f"dev{i:03d}" for i in range(args.devices)], os.getloadavg(), None
    results, notes = {}, {}
    try:
        started = time.perf_counter()
        filled = fill(work / "a.db", names, args.reports, args.processes)
        old = make_old(work / "a.db", args.old_share)
        size = (work / "a.db").stat().st_size / 1e9
        notes["SQLite"] = (
            f"filled in {filled:.0f} s, set old and checkpointed in {time.perf_counter() - started - filled:.0f} s "
            f"({size:.2f} GB), copied for phase B"
        )
        results["SQLite"] = run_backend(work / "a.db", names, args, old, sqlite_copy, sqlite_drop)
        if args.postgres:
            from tests.postgres import Cluster

            cluster = Cluster()
            url, started = cluster.url(), time.perf_counter()
            note = fill_postgres(url, names, args)
            filled = time.perf_counter() - started
            old = make_old(url, args.old_share)
            notes["PostgreSQL"] = (
                f"{note}; UPDATE and VACUUM FULL ANALYZE {time.perf_counter() - started - filled:.0f} s; phase B's "
                "database made by CREATE DATABASE ... TEMPLATE"
            )
            results["PostgreSQL"] = run_backend(
                url, names, args, old, copy_postgres, drop_postgres, postgres_pid(cluster)
            )
    finally:
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(work)
    print(
        f"\n{args.devices} devices posting {args.rate:,.0f} reports/s in batches of {args.batch} "
        f"({args.rate / args.batch:,.0f} POSTs/s); the sweep {args.sweep_batch} rows a transaction, pausing at least "
        f"max({args.sweep_pause:g} s, the transaction's time) between; edge serve --workers {args.workers}; "
        f"{args.seconds:g} s a phase "
        f"(the first {args.warmup:g} not counted), loopback, {multiprocessing.cpu_count()} CPUs ({cpu_name()}); "
        f"load average {load_before[0]:.2f} before, {os.getloadavg()[0]:.2f} after"
    )
    judged = {backend: print_backend(backend, notes[backend], **r) for backend, r in results.items()}
    if args.json:
        args.json.write_text(json.dumps({"phases": results, "judged": judged}, indent=2))


if __name__ == "__main__":
    main()
