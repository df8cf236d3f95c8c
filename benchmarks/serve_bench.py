"""How many reports can `edge serve` take? Simulated devices post real reports concurrently on loopback
for a fixed time; then the database is counted.

    python benchmarks/serve_bench.py                     # 20 devices, batches of 1 and 50, 10 s each
    python benchmarks/serve_bench.py --devices 50 --seconds 30
    python benchmarks/serve_bench.py --postgres          # and the same against a throwaway PostgreSQL
    python benchmarks/serve_bench.py --postgres --hosts 1,2   # and two hosts on that one PostgreSQL

Each device is a thread with its own token and keep-alive connection, spread over client processes.
Reported: reports stored per second, requests per second, POST latency p50/p99, and lost = reports
the server answered 200 for that are not in the database (must be 0). Baseline, same run, same
clients: GET /healthz, the HTTP stack with nothing behind it; the ratio is POSTs/s against it.
Target: >= 2000 reports/s on a 2-core machine.

--hosts 1,2 (with --postgres): PostgreSQL is measured with one `edge serve`, then with two on other ports
sharing its database, the devices split between them (lost counted over both). Beside each row, the CPU
each part took as a share of one core: the hosts' processes, the PostgreSQL server's (every backend), the
clients'; and from the batch-1 rows, the CPU a report costs the hosts and PostgreSQL, and so what a fleet of
10,000 devices reporting every 30 s would need.
"""

import argparse
import hashlib
import http.client
import json
import multiprocessing
import os
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.report import make_report, new_id  # noqa: E402
from edge.server.store import create_token, open_db  # noqa: E402
from edge.version import cpu_name  # noqa: E402
from tests.server import Server, cpu_seconds  # noqa: E402  (the real server process, as the tests start it)

LABELS = [f"class{i}" for i in range(10)]
FLEET = 10_000 / 30  # reports/s of 10,000 devices reporting every 30 s, one report a POST


def summary() -> dict:
    """A window summary the shape `edge run` sends: 10 classes, a confusion matrix, latencies."""
    cm = np.diag(np.full(10, 28)) + 1
    per_class = {label: {"precision": 0.9, "recall": 0.9, "f1": 0.9, "support": 37} for label in LABELS}
    latency = {"first": 9.1, "warmup": 0, "runs": 369, "batch": 1, "mean": 21.3, "p50": 21.0, "p90": 23.5, "p99": 30.2}
    return {
        "n": int(cm.sum()),
        "labels": LABELS,
        "accuracy": 0.757,
        "top_k_accuracy": {"1": 0.757, "5": 0.99},
        "per_class": per_class,
        "macro": {"precision": 0.76, "recall": 0.76, "f1": 0.76},
        "weighted": {"precision": 0.76, "recall": 0.76, "f1": 0.76},
        "micro": {"precision": 0.757, "recall": 0.757, "f1": 0.757},
        "confusion_matrix": cm.tolist(),
        "notes": [],
        "frames": 370,
        "evaluated": int(cm.sum()),
        "dropped": 2,
        "failures": 0,
        "reopens": 0,
        "skipped": {"count": 0, "files": []},
        "fps": 37.0,
        "seconds": 10.0,
        "latency_ms": {"inference": latency, "frame": latency},
        "peak_rss_mb": 131.0,
        "model": "/home/pi/bundles/mnv2/model.tflite",
        "model_bytes": 3_900_000,
        "source": "camera 0",
        "runtime": "ai_edge_litert 2.3.0",
        "delegate": None,
        "threads": 4,
        "options": {"top_k": 3, "threshold": None, "smooth": 1, "realtime": False},
    }


def report_texts(name: str, start: float = 1.8e9):
    """Report JSON texts of one device, each with a new id and seq, windows of a second from `start`, made
    cheaply: the clients share the server's cores, and the time they take is not the server's."""
    sha, run_id = hashlib.sha256(name.encode()).hexdigest(), uuid.uuid4().hex
    template = json.dumps(make_report(summary(), name, run_id, 0, sha, 1.8e9, 1.8e9 + 1))
    template = template.replace('"seq": 0', '"seq": SEQ').replace('"start": 1800000000.0', '"start": START')
    template = template.replace('"end": 1800000001.0', '"end": END')
    first_id = json.loads(template.replace("SEQ", "0").replace("START", "0").replace("END", "0"))["id"]
    seq = 0
    while True:
        yield (
            template.replace(first_id, new_id())
            .replace("SEQ", str(seq))
            .replace("START", str(start + seq))
            .replace("END", str(start + seq + 1))
        )
        seq += 1


def device(port, name, token, batch, seconds, path, results, start_at):
    texts = report_texts(name)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    acked, latencies, errors = 0, [], 0
    while time.time() < start_at:
        time.sleep(0.001)
    end = start_at + seconds
    while time.time() < end:
        if path == "/healthz":
            body, method, n = None, "GET", 0
        else:
            body = ('{"reports":[' + ",".join(next(texts) for _ in range(batch)) + "]}").encode()
            method, n = "POST", batch
        started = time.perf_counter()
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
        except OSError:
            errors += 1
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            continue
        latencies.append((time.perf_counter() - started) * 1000)
        if response.status == 200:
            acked += n
        else:
            errors += 1
    results.append((acked, latencies, errors))


def client_process(devices, batch, seconds, path, start_at, queue):
    results, threads, cpu = [], [], cpu_seconds(os.getpid())
    for port, name, token in devices:
        t = threading.Thread(target=device, args=(port, name, token, batch, seconds, path, results, start_at))
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    queue.put((results, cpu_seconds(os.getpid()) - cpu))


def process_cpu(pid: int) -> float:
    """CPU seconds of a process and of its children, those running and those it has reaped (a PostgreSQL
    server's backends: one a connection)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    reaped = (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return cpu_seconds(pid) + reaped + sum(cpu_seconds(int(child)) for child in children)


def postgres_pid(cluster) -> int:
    """The PostgreSQL server's first process (its postmaster) of a tests/postgres.py Cluster."""
    return int((cluster.folder / "data" / "postmaster.pid").read_text().split()[0])


def load(devices, batch, seconds, path, processes, pids=(), database_pid=None) -> dict:
    """`devices` [(port, name, token)] spread over `processes` clients for `seconds`; with the CPU seconds the
    hosts' processes (`pids`), the database server's and the clients' took meanwhile."""
    queue: multiprocessing.Queue = multiprocessing.Queue()
    start_at = time.time() + 1.0
    groups = [devices[i::processes] for i in range(processes)]
    workers = [
        multiprocessing.Process(target=client_process, args=(g, batch, seconds, path, start_at, queue)) for g in groups
    ]
    meter = lambda: (sum(map(cpu_seconds, pids)), process_cpu(database_pid) if database_pid else 0.0)  # noqa: E731
    cpu = meter()
    for w in workers:
        w.start()
    outputs = [queue.get() for _ in workers]
    for w in workers:
        w.join()
    hosts_cpu, database_cpu = (after - before for after, before in zip(meter(), cpu, strict=True))
    results = [r for rs, _ in outputs for r in rs]
    latencies = np.concatenate([r[1] for r in results]) if results else np.array([])
    return {
        "acked": sum(r[0] for r in results),
        "requests": len(latencies),
        "errors": sum(r[2] for r in results),
        "p50_ms": float(np.percentile(latencies, 50)),
        "p99_ms": float(np.percentile(latencies, 99)),
        "hosts_cpu_s": hosts_cpu,
        "database_cpu_s": database_cpu,
        "clients_cpu_s": sum(c for _, c in outputs),
    }


def measure(target, args, hosts: int = 1, database_pid: int | None = None) -> tuple[dict, list[dict]]:
    """The baseline and a row a batch size, for a store at `target` (a SQLite file or a PostgreSQL URL) served
    by `hosts` processes of `edge serve`, the devices split between them; `database_pid`: its server's."""
    db = open_db(target)
    servers = []
    try:
        for _ in range(hosts):
            servers.append(Server(target, None, "--workers", str(args.workers)).start())
        pids = [pid for s in servers for pid in (s.process.pid, *s.workers())]
        devices = [
            (servers[i % hosts].port, f"dev{i:03d}", create_token(db, f"dev{i:03d}")) for i in range(args.devices)
        ]
        baseline = load(devices, 0, args.seconds, "/healthz", args.processes, pids, database_pid)
        rows = []
        for batch in map(int, args.batches.split(",")):
            before = db.execute("SELECT COUNT(*) FROM reports").fetchone()[0]
            r = load(devices, batch, args.seconds, "/api/v1/reports", args.processes, pids, database_pid)
            stored = db.execute("SELECT COUNT(*) FROM reports").fetchone()[0] - before
            rows.append(
                {
                    "batch": batch,
                    **r,
                    "stored": stored,
                    "lost": r["acked"] - stored,
                    "reports_per_s": stored / args.seconds,
                    "requests_per_s": r["requests"] / args.seconds,
                    "vs_healthz": r["requests"] / baseline["requests"],
                }
            )
    finally:
        for s in servers:
            s.stop()
        db.close()
    return baseline, rows


def report(label: str, baseline: dict, rows: list[dict], seconds: float) -> None:
    """A store's table; CPU as a share of one core over the load."""
    print(
        f"\n{label}: baseline GET /healthz: {baseline['requests'] / seconds:,.0f} requests/s, "
        f"p50 {baseline['p50_ms']:.2f} ms, p99 {baseline['p99_ms']:.2f} ms"
    )
    print(
        f"{'batch':>6}{'reports/s':>12}{'requests/s':>12}{'vs healthz':>12}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'errors':>8}{'lost':>6}{'hosts CPU':>11}{'database CPU':>14}{'clients CPU':>13}{'target':>8}"
    )
    for r in rows:
        print(
            f"{r['batch']:>6}{r['reports_per_s']:>12,.0f}{r['requests_per_s']:>12,.0f}{r['vs_healthz']:>12.2f}"
            f"{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}{r['errors']:>8}{r['lost']:>6}"
            f"{r['hosts_cpu_s'] / seconds:>11.0%}{r['database_cpu_s'] / seconds:>14.0%}"
            f"{r['clients_cpu_s'] / seconds:>13.0%}"
            f"{'PASS' if r['reports_per_s'] >= 2000 and r['lost'] == 0 else 'FAIL':>8}"
        )


def fleet(label: str, rows: list[dict]) -> None:
    """What 10,000 devices reporting every 30 s, one report a POST, would take of CPU, at this run's cost."""
    one = next((r for r in rows if r["batch"] == 1), None)
    if one is None or not one["stored"]:
        return
    host_ms, database_ms = (1000 * one[key] / one["stored"] for key in ("hosts_cpu_s", "database_cpu_s"))
    print(
        f"{label}: a report at batch 1 costs {host_ms:.2f} ms of host CPU and {database_ms:.2f} ms of the database "
        f"server's; 10,000 devices every 30 s ({FLEET:.0f} reports/s) take {FLEET * host_ms / 1000:.2f} + "
        f"{FLEET * database_ms / 1000:.2f} = {FLEET * (host_ms + database_ms) / 1000:.2f} cores"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batches", default="1,50")
    parser.add_argument("--processes", type=int, default=2, help="client processes the devices are spread over")
    parser.add_argument("--workers", type=int, default=multiprocessing.cpu_count(), help="edge serve --workers (each)")
    parser.add_argument("--postgres", action="store_true", help="also a throwaway PostgreSQL (tests/postgres.py)")
    parser.add_argument("--hosts", default="1", help="hosts sharing the PostgreSQL database, in turns: 1,2")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    hosts = [int(h) for h in args.hosts.split(",")]
    if hosts != [1] and not args.postgres:
        parser.error("--hosts is for --postgres: hosts share a PostgreSQL database")
    load_before = os.getloadavg()
    results = {"sqlite": measure(Path(tempfile.mkdtemp()) / "edge.db", args)}
    if args.postgres:
        from tests.postgres import Cluster

        cluster = Cluster()
        try:
            for n in hosts:
                label = "postgres" if n == 1 else f"postgres, {n} hosts"
                results[label] = measure(cluster.url(), args, n, postgres_pid(cluster))
        finally:
            cluster.stop()
    print(
        f"\n{args.devices} devices, {args.seconds:g} s each, {args.processes} client processes, edge serve --workers "
        f"{args.workers}, loopback, {multiprocessing.cpu_count()} CPUs ({cpu_name()}); load average "
        f"{load_before[0]:.2f} before, {os.getloadavg()[0]:.2f} after"
    )
    for label, (baseline, rows) in results.items():
        report(label, baseline, rows, args.seconds)
    print()
    for label, (_, rows) in results.items():
        fleet(label, rows)
    ratio = lambda a, b: ", ".join(  # noqa: E731
        f"batch {x['batch']}: {x['reports_per_s'] / y['reports_per_s']:.2f}"
        for x, y in zip(results[a][1], results[b][1], strict=True)
    )
    if "postgres" in results:
        print(f"\nPostgreSQL's reports/s against SQLite's (target >= 0.7): {ratio('postgres', 'sqlite')}")
    for label in results:
        if label.startswith("postgres, "):
            print(f"{label.removeprefix('postgres, ')} on PostgreSQL against one: {ratio(label, 'postgres')}")
    if args.json:
        args.json.write_text(json.dumps({k: {"baseline": b, "rows": r} for k, (b, r) in results.items()}, indent=2))


if __name__ == "__main__":
    main()
