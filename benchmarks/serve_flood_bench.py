"""Are devices still served while clients that never finish a request flood `edge serve`? (issue 29, defect 7)

    python benchmarks/serve_flood_bench.py                        # before and after, 3 rounds of 10 s a phase (~5 min)
    python benchmarks/serve_flood_bench.py --floods 600:200,2400:600 --files 1024 --seconds 10

The server runs as a real process with `ulimit -n` of --files (1024: a default systemd unit's, soft and
hard), once as this tree has it ("after") and once as --before (a git revision, extracted to a temporary
folder) had it, both up and taking turns. For each, phases of --seconds: devices alone (the baseline),
then each flood SILENT:SLOW: SILENT connections that send nothing and SLOW slowloris ones that send a
request's first line and then a header byte a second, reopened as soon as the server closes them (an
attacker keeps up its count). Devices: --devices threads, each POSTing one real report on a new
connection (as edge run's reporter does) every 0.1 s, 10 s timeout. Reported: POSTs answered 200 out of
those sent, p50/p99 ms of the answered, their ratio to the same server's baseline, and how many of the
attack's connections the server closed (or reset).
"""

import argparse
import http.client
import io
import multiprocessing
import resource
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.serve_bench import report_texts  # noqa: E402
from edge.version import cpu_name  # noqa: E402
from tests.server import free_port  # noqa: E402
from tests.test_serve_connections import closed_by_server  # noqa: E402

BEFORE = "8ea4ca8^"  # the commit before the header and body timeouts and the connection cap


def tree(rev: str, into: Path) -> Path:
    """The repository as it was at `rev`, extracted (git archive: nothing in this checkout changes)."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def token(source: Path, db: Path, name: str) -> str:
    """`edge token create` as the edge in `source` makes it (the store's version is its own)."""
    return subprocess.run(
        [sys.executable, "-m", "edge.cli", "token", "create", name, "--db", str(db)],
        cwd=source,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def serve(source: Path, db: Path, port: int, workers: int, files: int) -> subprocess.Popen:
    """`edge serve` from `source`, with `files` open files at most; back when /healthz answers."""
    process = subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "serve", "--db", str(db), "--port", str(port), "--workers", str(workers)],
        cwd=source,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (files, files)),
    )
    for _ in range(400):
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"edge serve from {source} did not start: {process.communicate()[1].decode()[-2000:]}")


def attacker(port: int, silent: int, slow: int, ready, stop, closed_count) -> None:
    """Keep `silent` + `slow` connections open, reopening those the server closes (counted)."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    def opened(kind: str) -> socket.socket | None:
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=2)
            if kind == "slow":
                sock.sendall(b"POST /api/v1/reports HTTP/1.1\r\nHost: edge\r\nContent-Length: 1000\r\n")
            sock.setblocking(False)
            return sock
        except OSError:
            return None

    socks: list[list] = [[kind, opened(kind)] for kind in ["silent"] * silent + ["slow"] * slow]
    ready.set()
    last_byte = time.monotonic()
    while not stop.is_set():
        trickle = time.monotonic() - last_byte >= 1.0
        last_byte = time.monotonic() if trickle else last_byte
        for pair in socks:
            kind, sock = pair
            if sock is not None and trickle and kind == "slow":
                try:
                    sock.send(b"X")  # a header's name, a byte a second, never ended
                except OSError:
                    pass
            if sock is None or closed_by_server(sock):
                if sock is not None:
                    sock.close()
                    closed_count.value += 1
                pair[1] = opened(kind)
        time.sleep(0.1)
    for _, sock in socks:
        if sock is not None:
            sock.close()


def device(port: int, name: str, token: str, until: float, results: list) -> None:
    texts = report_texts(name)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    while time.time() < until:
        body = ('{"reports":[' + next(texts) + "]}").encode()
        started = time.perf_counter()
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection.request("POST", "/api/v1/reports", body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            connection.close()
            results.append((response.status == 200, (time.perf_counter() - started) * 1000))
        except OSError:
            results.append((False, (time.perf_counter() - started) * 1000))
        time.sleep(0.1)


def phase(port: int, tokens: list, seconds: float, flood: tuple[int, int] | None) -> dict:
    """Devices posting for `seconds`, under `flood` (silent, slow) if given."""
    ready, stop, closed_count = multiprocessing.Event(), multiprocessing.Event(), multiprocessing.Value("i", 0)
    attack = None
    if flood:
        attack = multiprocessing.Process(target=attacker, args=(port, *flood, ready, stop, closed_count))
        attack.start()
        ready.wait(120)
        time.sleep(1.0)  # the server has taken the attack's connections
        closed_count.value = 0
    results: list[tuple[bool, float]] = []  # (answered 200, milliseconds) of each POST
    until = time.time() + seconds
    threads = [threading.Thread(target=device, args=(port, name, token, until, results)) for name, token in tokens]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if attack:
        stop.set()
        attack.join(30)
    answered = np.array([ms for ok, ms in results if ok])
    return {
        "sent": len(results),
        "ok": len(answered),
        "closed": closed_count.value,
        "p50": float(np.percentile(answered, 50)) if len(answered) else float("nan"),
        "p99": float(np.percentile(answered, 99)) if len(answered) else float("nan"),
    }


def start(label: str, source: Path, work: Path, args) -> dict:
    db = work / f"{label}.db"
    tokens = [(f"dev{i:02d}", token(source, db, f"dev{i:02d}")) for i in range(args.devices)]
    port = free_port()
    return {
        "label": label,
        "port": port,
        "tokens": tokens,
        "process": serve(source, db, port, args.workers, args.files),
    }


def stop_server(server: dict) -> None:
    server["process"].terminate()
    try:
        server["process"].wait(20)
    except subprocess.TimeoutExpired:
        server["process"].kill()


def summed(runs: list[dict]) -> dict:
    """The rounds of one server and flood: answers summed, latencies their median."""
    return {
        "sent": sum(r["sent"] for r in runs),
        "ok": sum(r["ok"] for r in runs),
        "closed": sum(r["closed"] for r in runs),
        "p50": float(np.median([r["p50"] for r in runs])),
        "p99": float(np.median([r["p99"] for r in runs])),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--floods", default="600:200,2400:600", help="SILENT:SLOW,... one phase each")
    parser.add_argument("--files", type=int, default=1024, help="the server's ulimit -n (soft and hard)")
    parser.add_argument("--workers", type=int, default=multiprocessing.cpu_count(), help="edge serve --workers")
    parser.add_argument("--devices", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3, help="each phase this many times, the servers alternating")
    parser.add_argument("--before", default=BEFORE, help="the git revision to measure as before")
    args = parser.parse_args()
    floods = [tuple(map(int, f.split(":"))) for f in args.floods.split(",")]
    if resource.getrlimit(resource.RLIMIT_NOFILE)[1] < sum(map(sum, floods)) + 1000:
        sys.exit("this shell's ulimit -n is too low for the floods: raise it or give smaller --floods")
    phases = [None, *floods]
    runs = {}
    with tempfile.TemporaryDirectory() as temp:
        work = Path(temp)
        servers = [start("after", ROOT, work, args), start("before", tree(args.before, work / "before"), work, args)]
        try:
            for n in range(args.rounds):  # both servers up, taking turns: the machine's load falls on both alike
                for flood in phases:
                    for server in servers[:: 1 if n % 2 == 0 else -1]:
                        r = phase(server["port"], server["tokens"], args.seconds, flood)
                        runs.setdefault((server["label"], flood), []).append(r)
                        time.sleep(1.0)
        finally:
            for server in servers:
                stop_server(server)
    rows = [
        {"server": label, "flood": flood, **summed(runs[label, flood])}
        for label in ("after", "before")
        for flood in phases
    ]
    print(
        f"\n{args.devices} devices, a POST each every 0.1 s on a new connection; edge serve --workers "
        f"{args.workers}, ulimit -n {args.files}; {args.rounds} rounds of {args.seconds:g} s a phase; loopback, "
        f"{multiprocessing.cpu_count()} CPUs ({cpu_name()}); before = {args.before}"
    )
    print(
        f"{'server':<8}{'flood silent+slow':>19}{'answered':>14}{'p50 ms':>9}{'p99 ms':>9}{'p50 x':>7}{'p99 x':>7}"
        f"{'attack closed':>15}"
    )
    for r in rows:
        base = next(b for b in rows if b["server"] == r["server"] and b["flood"] is None)
        flood = f"{r['flood'][0]}+{r['flood'][1]}" if r["flood"] else "none"
        print(
            f"{r['server']:<8}{flood:>19}{r['ok']:>7}/{r['sent']:<6}{r['p50']:>9.1f}{r['p99']:>9.1f}"
            f"{r['p50'] / base['p50']:>7.2f}{r['p99'] / base['p99']:>7.2f}{r['closed']:>15}"
        )


if __name__ == "__main__":
    main()
