"""The real `edge serve` process on loopback, for tests: start it, wait for /healthz, kill it."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def token(db, name, *args) -> str:
    """`edge token create NAME` for the database `db` (`--reader` in args for a reader): the token."""
    r = subprocess.run(
        [sys.executable, "-m", "edge.cli", "token", "create", name, "--db", str(db), *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command's name (state first), or None once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return None


def running(pid: int) -> bool:
    """Not gone, nor a zombie (whose sockets are closed) waiting for init to reap it."""
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def cpu_seconds(pid: int) -> float:
    """CPU time a (running) process has used, user and system."""
    fields = _stat(pid)
    assert fields is not None, f"process {pid} is gone"
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bytes_written(pid: int) -> int:
    """Bytes a process has passed to write() and its kin (its store's pages, its log): exact, where CPU time is
    counted in 10 ms ticks that a worker serving ten POSTs may or may not reach."""
    counters = dict(line.split(": ") for line in Path(f"/proc/{pid}/io").read_text().splitlines())
    return int(counters["wchar"])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, db, port=None, *args):
        self.db, self.port, self.args = db, port or free_port(), args
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = None

    def start(self) -> "Server":
        self.process = subprocess.Popen(
            [sys.executable, "-m", "edge.cli", "serve", "--db", str(self.db), "--port", str(self.port), *self.args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(200):
            if self.process.poll() is not None:
                raise RuntimeError(f"edge serve died: {self.process.stderr.read().decode()}")
            try:
                self.get("/healthz")
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("edge serve did not answer /healthz in 10 s")

    def workers(self) -> list[int]:
        """The pids of the server's worker processes."""
        return [
            int(pid) for pid in Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        ]

    def kill(self) -> None:
        """As a crash or power cut would: no shutdown handlers, in any of its processes."""
        workers = self.workers()
        self.process.send_signal(signal.SIGKILL)
        for pid in workers:
            os.kill(pid, signal.SIGKILL)
        self.process.wait(10)
        while any(map(running, workers)):
            time.sleep(0.01)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def __enter__(self) -> "Server":  # a module's host: with Server(db).start() as server: yield server, ...
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def alive(self) -> bool:
        return self.process.poll() is None and self.get("/healthz") == (200, {"status": "ok"})

    def request(self, method, path, body=None, token=None, headers=None):
        """(status, parsed JSON, text or bytes) of one request."""
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={
                **({"Authorization": f"Bearer {token}"} if token else {}),
                "Content-Type": "application/json",
                **(headers or {}),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        try:
            return status, json.loads(raw)
        except ValueError:
            pass
        try:
            return status, raw.decode()
        except UnicodeDecodeError:
            return status, raw

    def get(self, path, token=None):
        return self.request("GET", path, token=token)

    def post(self, reports_or_body, token):
        body = {"reports": reports_or_body} if isinstance(reports_or_body, list) else reports_or_body
        return self.request("POST", "/api/v1/reports", body, token)
