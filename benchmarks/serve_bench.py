"""How many reports can `edge serve` take? Simulated devices post real reports concurrently on loopback
for a fixed time; then the database is counted.

    python benchmarks/serve_bench.py                     # 20 devices, batches of 1 and 50, 10 s each
    python benchmarks/serve_bench.py --devices 50 --seconds 30
    python benchmarks/serve_bench.py --postgres          # and the same against a throwaway PostgreSQL

Each device is a thread with its own token and keep-alive connection, spread over client processes.
Reported: reports stored per second, requests per second, POST latency p50/p99, and lost = reports
the server answered 200 for that are not in the database (must be 0). Baseline, same run, same
clients: GET /healthz, the HTTP stack with nothing behind it; the ratio is POSTs/s against it.
Target: >= 2000 reports/s on a 2-core machine.
"""

import argparse
import hashlib
import http.client
import json
import multiprocessing
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
from tests.server import Server  # noqa: E402  (the real server process, as the tests start it)

LABELS = [f"class{i}" for i in range(10)]


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


def client_process(port, devices, batch, seconds, path, start_at, queue):
    results, threads = [], []
    for name, token in devices:
        t = threading.Thread(target=device, args=(port, name, token, batch, seconds, path, results, start_at))
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    queue.put(results)


def load(port, tokens, batch, seconds, path, processes) -> dict:
    queue: multiprocessing.Queue = multiprocessing.Queue()
    start_at = time.time() + 1.0
    groups = [tokens[i::processes] for i in range(processes)]
    workers = [
        multiprocessing.Process(target=client_process, args=(port, g, batch, seconds, path, start_at, queue))
        for g in groups
    ]
    for w in workers:
        w.start()
    results = [r for _ in workers for r in queue.get()]
    for w in workers:
        w.join()
    latencies = np.concatenate([r[1] for r in results]) if results else np.array([])
    return {
        "acked": sum(r[0] for r in results),
        "requests": len(latencies),
        "errors": sum(r[2] for r in results),
        "p50_ms": float(np.percentile(latencies, 50)),
        "p99_ms": float(np.percentile(latencies, 99)),
    }


def measure(target, args) -> tuple[dict, list[dict]]:
    """The baseline and a row a batch size, for a store at `target` (a SQLite file or a PostgreSQL URL)."""
    db = open_db(target)
    tokens = [(f"dev{i:03d}", create_token(db, f"dev{i:03d}")) for i in range(args.devices)]
    server = Server(target, None, "--workers", str(args.workers)).start()
    rows = []
    try:
        baseline = load(server.port, tokens, 0, args.seconds, "/healthz", args.processes)
        for batch in map(int, args.batches.split(",")):
            before = db.execute("SELECT COUNT(*) FROM reports").fetchone()[0]
            r = load(server.port, tokens, batch, args.seconds, "/api/v1/reports", args.processes)
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
        server.stop()
        db.close()
    return baseline, rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batches", default="1,50")
    parser.add_argument("--processes", type=int, default=2, help="client processes the devices are spread over")
    parser.add_argument("--workers", type=int, default=multiprocessing.cpu_count(), help="edge serve --workers")
    parser.add_argument("--postgres", action="store_true", help="also a throwaway PostgreSQL (tests/postgres.py)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = {"sqlite": measure(Path(tempfile.mkdtemp()) / "edge.db", args)}
    if args.postgres:
        from tests.postgres import Cluster

        cluster = Cluster()
        try:
            results["postgres"] = measure(cluster.url(), args)
        finally:
            cluster.stop()
    print(
        f"\n{args.devices} devices, {args.seconds:g} s each, {args.processes} client processes, edge serve --workers "
        f"{args.workers}, loopback, {multiprocessing.cpu_count()} CPUs ({cpu_name()})"
    )
    for backend, (baseline, rows) in results.items():
        print(
            f"\n{backend}: baseline GET /healthz: {baseline['requests'] / args.seconds:,.0f} requests/s, "
            f"p50 {baseline['p50_ms']:.2f} ms, p99 {baseline['p99_ms']:.2f} ms"
        )
        print(
            f"{'batch':>6}{'reports/s':>12}{'requests/s':>12}{'vs healthz':>12}{'p50 ms':>9}{'p99 ms':>9}"
            f"{'errors':>8}{'lost':>6}{'target':>8}"
        )
        for r in rows:
            print(
                f"{r['batch']:>6}{r['reports_per_s']:>12,.0f}{r['requests_per_s']:>12,.0f}{r['vs_healthz']:>12.2f}"
                f"{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}{r['errors']:>8}{r['lost']:>6}"
                f"{'PASS' if r['reports_per_s'] >= 2000 and r['lost'] == 0 else 'FAIL':>8}"
            )
    if "postgres" in results:
        ratios = [
            f"batch {pg['batch']}: {pg['reports_per_s'] / lite['reports_per_s']:.2f}"
            for pg, lite in zip(results["postgres"][1], results["sqlite"][1], strict=True)
        ]
        print(f"\nPostgreSQL's reports/s against SQLite's (target >= 0.7): {', '.join(ratios)}")
    if args.json:
        args.json.write_text(json.dumps({k: {"baseline": b, "rows": r} for k, (b, r) in results.items()}, indent=2))


if __name__ == "__main__":
    main()
