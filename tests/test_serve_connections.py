"""`edge serve` against clients that never finish a request (issue 29): silent sockets, headers sent a byte at
a time and bodies that stall are closed after their timeouts, with a 408 to those that began a request; and
past the open-files limit of a default systemd unit (1024) the connections that have waited longest make
room, so a device's report is still stored during a flood."""

import json
import resource
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge.report import make_report
from edge.server import workers
from tests.reports import window_summary
from tests.server import Server, free_port, token

FILES = 1024  # ulimit -n of a default systemd unit


def serve(db: Path, header_timeout: float, body_timeout: float, files: tuple[int, int]) -> Server:
    """The server, its open-files limit (soft, hard) set before it starts; up when /healthz answers."""
    server = Server(db, free_port())
    server.process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edge.cli",
            "serve",
            "--db",
            str(db),
            "--port",
            str(server.port),
            "--workers",
            "1",
            "--header-timeout",
            str(header_timeout),
            "--body-timeout",
            str(body_timeout),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, files),
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and server.process.poll() is None:
        try:
            if server.get("/healthz")[0] == 200:
                return server
        except OSError:
            time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"edge serve did not start: {server.process.stderr.read().decode()}")


def report_body(device: str, seq: int = 0) -> bytes:
    summary = window_summary(["cat", "dog"], [(0, 0), (1, 0)])
    return json.dumps(
        {"reports": [make_report(summary, device, "run-0001", seq, "a" * 64, 1.8e9 + seq, 1.8e9 + seq + 1)]}
    ).encode()


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def closed_by_server(sock: socket.socket) -> bool:
    """Whether the server has closed it (a 408 read first, if one came)."""
    sock.setblocking(False)
    try:
        while sock.recv(65536):
            pass
        return True
    except BlockingIOError:
        return False
    except OSError:
        return True


def answer(sock: socket.socket, wait: float = 10.0) -> bytes:
    """All the server sends until it closes the connection, or what came in `wait` seconds if it does not."""
    sock.settimeout(wait)
    got = b""
    try:
        while chunk := sock.recv(65536):
            got += chunk
    except TimeoutError:
        return got + b"<still open>"
    except ConnectionResetError:
        return got + b"<reset>"
    return got


@pytest.fixture(scope="module")
def tokens(tmp_path_factory):
    db = tmp_path_factory.mktemp("connections") / "edge.db"
    return db, token(db, "pi-door")


@pytest.fixture(scope="module")
def quick(tokens):
    """Timeouts of 1 s; a soft open-files limit of 1024 under a hard one of 4096 (a systemd unit's, scaled)."""
    server = serve(tokens[0], 1.0, 1.0, (FILES, 4 * FILES))
    yield server
    server.stop()
    assert b"Traceback" not in server.process.stderr.read()  # a body cut off is no error of the server's


def test_a_flood_past_the_open_files_limit_leaves_devices_served(tokens):
    """1300 silent connections and 200 half-sent requests on one worker that may open 1024 files: before,
    every connection past the limit (the device's too) was reset."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < 2000:
        pytest.skip(f"the attack needs 2000 open files here, and ulimit -n allows {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    server = serve(tokens[0], 10.0, 10.0, (FILES, FILES))  # the defaults
    attack = []
    try:
        attack = [connect(server.port) for _ in range(1300)]
        for _ in range(200):
            attack.append(connect(server.port))
            attack[-1].sendall(b"POST /api/v1/reports HTTP/1.1\r\nHost: edge\r\nContent-Length: 1000\r\n")
        status, body = server.request("POST", "/api/v1/reports", report_body("pi-door"), tokens[1])
        assert status == 200 and body["stored"] == 1
        # the kernel hands connections over in order: the device's came after the attack's
        closed = sum(map(closed_by_server, attack))
        assert closed >= len(attack) - (FILES - workers.RESERVED_FILES)
        assert server.alive()
    finally:
        for sock in attack:
            sock.close()
        server.stop()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert b"Traceback" not in server.process.stderr.read()


def test_requests_that_do_not_finish_are_closed_after_their_timeouts(quick, tokens):
    """Half-sent headers and a stalled body get a 408 and are closed; a connection that sent nothing is
    closed without one. Before, every one of them stayed open."""
    silent = connect(quick.port)
    headers = connect(quick.port)
    headers.sendall(b"POST /api/v1/reports HTTP/1.1\r\nHost: edge\r\n")
    stalled = connect(quick.port)
    stalled.sendall(
        f"POST /api/v1/reports HTTP/1.1\r\nHost: edge\r\nAuthorization: Bearer {tokens[1]}\r\n"
        'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"reports"'.encode()
    )
    trickle = connect(quick.port)  # a byte of headers every 0.2 s: a deadline, not a wait between bytes
    for byte in b"GET /healthz HTTP/1.1\r\nHost: edge\r\nX-Slow: " + b"a" * 30:
        if select.select([trickle], [], [], 0.2)[0]:
            break
        trickle.sendall(bytes([byte]))
    assert answer(silent) == b""
    for sock, why in (
        (headers, b"headers took over 1 s"),
        (stalled, b"body stalled"),
        (trickle, b"headers took over 1 s"),
    ):
        got = answer(sock)
        assert got.startswith(b"HTTP/1.1 408 ") and why in got, got
    assert quick.alive()


def test_a_slow_body_that_keeps_coming_is_taken(quick, tokens):
    """The body timeout is between bytes: a body sent in pieces over 3 s (three times it) is stored."""
    body = report_body("pi-door", seq=1)
    sock = connect(quick.port)
    sock.sendall(
        f"POST /api/v1/reports HTTP/1.1\r\nHost: edge\r\nAuthorization: Bearer {tokens[1]}\r\n"
        f"Content-Type: application/json\r\nConnection: close\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    )
    step = len(body) // 6 + 1
    for start in range(0, len(body), step):
        time.sleep(0.5)
        sock.sendall(body[start : start + step])
    got = answer(sock)
    assert got.startswith(b"HTTP/1.1 200 ") and b'"stored":1' in got, got


def test_the_open_files_limit_is_raised_to_the_hard_one(quick):
    """systemd starts a service with a soft limit of 1024 under a far higher hard one: each worker takes the
    hard one, and with it room for --max-connections."""
    for pid in quick.workers():
        limits = Path(f"/proc/{pid}/limits").read_text()
        line = next(line for line in limits.splitlines() if line.startswith("Max open files"))
        assert line.split()[3:5] == [str(4 * FILES)] * 2
