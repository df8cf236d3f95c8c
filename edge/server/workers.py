"""The processes of `edge serve`: the listening sockets, the workers (each a whole server on the port, see
edge.server.app) and the main process that watches them, and what a worker does about clients that never
finish a request: silent sockets, headers sent a byte at a time (slowloris), bodies that stall. Each would
hold its connection, and a file, forever; past the open-files limit (1024 in a default systemd unit) the
server could take no connection at all, devices' included."""

import asyncio
import gc
import json
import os
import resource
import signal
import socket
import sys
import threading
import traceback

from edge.errors import EdgeError
from edge.server import store
from edge.server.app import create_app
from edge.server.database import redacted
from edge.server.options import LOOPBACK, ServeOptions
from edge.server.state import Shared

RESERVED_FILES = 256  # a worker's files besides connections: its SQLite connections (3 each, a thread's), pipes
EVICTIONS_LOGGED = 60.0  # seconds between a worker's lines about connections it closed to make room


def listen(host: str, port: int, count: int = 1) -> list[socket.socket]:
    """A listening socket for each of `count` workers, bound here so a taken port or a foreign address is a
    one-line error. On Linux each worker has its own (SO_REUSEPORT), and the kernel spreads connections over
    them evenly: on one shared socket, whichever worker wakes first takes every connection waiting, and a
    device keeps its connection. Elsewhere they share one."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror:
        raise EdgeError(f"--host {host}: not an address of this machine; give e.g. 127.0.0.1 or 0.0.0.0") from None

    def bound(reuse_port: bool) -> socket.socket:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart need not wait out TIME_WAIT
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            sock.bind((host, port))
        except OSError as e:
            sock.close()
            raise EdgeError(
                f"cannot listen on {host}:{port} ({e.strerror}): another program (an edge serve "
                "already running?) has it, or choose another --port or --host"
            ) from None
        sock.listen(2048)
        return sock

    first = bound(reuse_port=False)  # taken by anything at all (another edge serve's workers too): the error
    if count == 1 or sys.platform != "linux":
        return [first] * count
    first.close()
    return [bound(reuse_port=True) for _ in range(count)]


def open_files() -> int:
    """Files this process may open, its soft limit raised to the hard one first: systemd starts a service
    with 1024 (its hard limit is far higher), and each connection is a file."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 16)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    except (ValueError, OSError):  # macOS caps the soft limit below an unlimited hard one
        return soft
    return want


def connection_cap(options: ServeOptions, files: int) -> int:
    """Connections a worker keeps open: --max-connections, fewer where files are short (some files are
    not connections: RESERVED_FILES)."""
    return min(options.max_connections, max(files - RESERVED_FILES, files // 2))


def _refusal(message: str) -> bytes:
    """A 408 with {"error": message}, the connection closed after it."""
    body = json.dumps({"error": message}).encode()
    return (
        b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
        b"content-length: %d\r\n\r\n%s" % (len(body), body)
    )


def guarded_protocol(options: ServeOptions, cap: int, log) -> type:
    """uvicorn's HTTP protocol (httptools, what uvicorn[standard] picks) with the limits it lacks: a
    request's headers must be complete within `header_timeout` of the connection being ready for one (a
    deadline: a byte now and then does not extend it); a body must keep coming, a byte at least every
    `body_timeout`; and a worker holds at most `cap` connections, closing for each one more the connection
    that has waited longest for a request (silent ones, half-sent headers, idle keep-alives). Devices send
    their request as soon as they connect, so they are the newest waiting and are served while an
    attacker's oldest go. (uvicorn's --limit-concurrency would answer 503 to devices and attackers alike.)"""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    # this worker's connections waiting for a request's headers, the longest waiting first
    waiting: dict[HttpToolsProtocol, None] = {}
    logged = [float("-inf")]  # when a line about evictions was last logged

    class Guarded(HttpToolsProtocol):
        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self.timer: asyncio.TimerHandle | None = None
            self.begun, self.progress = False, 0.0
            self._wait_for_headers()
            if len(self.connections) > cap:
                oldest = next(iter(waiting))  # this one if it is the only one waiting
                waiting.pop(oldest)  # now: the next connection in the same burst of accepts closes another
                oldest.transport.close()
                if self.loop.time() - logged[0] > EVICTIONS_LOGGED:
                    logged[0] = self.loop.time()
                    log(
                        f"edge serve: over {cap} connections in a worker: closing those that have waited longest "
                        "without sending a request (a flood of them?)"
                    )

        def connection_lost(self, exc) -> None:
            self._stop_timer()
            waiting.pop(self, None)
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            self.begun = self.begun or self in waiting
            super().data_received(data)

        def on_headers_complete(self) -> None:
            waiting.pop(self, None)
            self._stop_timer()
            super().on_headers_complete()
            self.progress = self.loop.time()
            self.timer = self.loop.call_later(options.body_timeout, self._body_late)

        def on_body(self, body: bytes) -> None:
            self.progress = self.loop.time()  # the timer reads it when it fires: no new timer a chunk
            super().on_body(body)

        def on_message_complete(self) -> None:
            if self not in waiting:  # else the body of a request already answered (a 401) ended: the deadline holds
                self._stop_timer()
            super().on_message_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and self.cycle.response_complete:  # not a pipelined one begun
                self._wait_for_headers()

        def _wait_for_headers(self) -> None:
            waiting[self] = None
            self.begun = False
            self._stop_timer()
            self.timer = self.loop.call_later(options.header_timeout, self._headers_late)

        def _stop_timer(self) -> None:
            if self.timer is not None:
                self.timer.cancel()
                self.timer = None

        def _headers_late(self) -> None:
            self.timer = None
            if self.begun:  # a 408 to one that sent nothing could be read as the answer to a request crossing it
                self.transport.write(_refusal(f"the request's headers took over {options.header_timeout:g} s"))
            self.transport.close()

        def _body_late(self) -> None:
            idle = self.loop.time() - self.progress
            if self.flow.read_paused:  # the app has not taken what came: the wait is the server's
                self.progress, idle = self.loop.time(), 0.0
            if idle < options.body_timeout:
                self.timer = self.loop.call_later(options.body_timeout - idle, self._body_late)
                return
            self.timer = None
            if not self.cycle.response_started:
                self.transport.write(
                    _refusal(f"the request's body stalled: nothing came for {options.body_timeout:g} s")
                )
            self.transport.close()

    return Guarded


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def run_server(options: ServeOptions, log=print) -> None:
    """Run the server until stopped (SIGTERM, SIGINT or SIGHUP): --workers processes, each a whole server on
    the port (`listen`), this one watching them. A stop lets each finish the requests it has begun. The
    workers stop too when this process dies (however it dies: they read a pipe only it writes to); should
    one of them die, the rest stop and this exits 1, for a supervisor (systemd) to start it again."""
    import uvicorn  # noqa: F401 (once, here: the workers share what it loads)

    if not hasattr(os, "fork"):
        raise EdgeError("edge serve forks its workers: run it on Linux or macOS (on Windows, in WSL)")
    options = options.resolved()
    assert options.workers is not None  # resolved() decided it
    store.open_db(options.db).close()  # creates (or upgrades) the store, or tells why not, before a worker starts
    sockets = listen(options.host, options.port, options.workers)
    files = open_files()
    cap = connection_cap(options, files)
    if cap < options.max_connections:
        log(
            f"edge serve: {files} open files allowed (ulimit -n; in a systemd unit LimitNOFILE=): each worker keeps "
            f"{cap} connections, not {options.max_connections}; allow at least "
            f"{options.max_connections + RESERVED_FILES} for all of them"
        )
    if options.host not in LOOPBACK:
        log(
            f"listening on {options.host}: tokens cross the network in the clear unless a TLS proxy (nginx, "
            "Caddy) is in front"
        )
        if not options.protect_reads:
            log("--open-reads: anyone who can reach this port reads every device's reports")
    reads = "reads need a token" if options.protect_reads else "reads are open"
    log(
        f"edge serve: dashboard at http://{options.host}:{options.port}/ ({reads}), storing into "
        f"{redacted(str(options.db))}, "
        f"{options.workers} worker{'s' * (options.workers > 1)}"
    )
    shared = Shared()
    alive, parent = os.pipe()  # a worker stops when this process's end closes
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)  # until a worker has its own handlers
    protocol = guarded_protocol(options, cap, log)  # each worker its own copy, forked
    workers = [_worker(options, protocol, sockets, n, shared, alive, parent, log) for n in range(options.workers)]
    os.close(alive)
    for sock in set(sockets):
        sock.close()
    stopping = False

    def stop(*_):
        nonlocal stopping
        if not stopping:
            stopping = True
            os.close(parent)

    for s in STOP_SIGNALS:
        signal.signal(s, stop)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    crashed = None
    while workers:
        pid, status = os.wait()
        workers.remove(pid)
        if not stopping:
            crashed = os.waitstatus_to_exitcode(status)
            log(
                f"edge serve: a worker ended ({'signal ' + str(-crashed) if crashed < 0 else 'exit ' + str(crashed)})"
                ": stopping the others"
            )
            stop()
    if crashed is not None:
        sys.exit(1)


def _worker(
    options: ServeOptions, protocol: type, sockets: list, n: int, shared: Shared, alive: int, parent: int, log
) -> int:
    """Fork worker `n`: its pid, here; there, serve on sockets[n] until told to stop (by a signal or by
    `alive` ending), speaking HTTP with `protocol` (guarded_protocol). Worker 0 makes the checkpoints."""
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        import uvicorn

        os.close(parent)
        for sock in set(sockets) - {sockets[n]}:  # the others' (a worker that dies takes its own with it)
            sock.close()
        for s in STOP_SIGNALS:  # SIGHUP is the parent's to act on (as SIGTERM) for all workers
            signal.signal(s, signal.SIG_IGN if s == signal.SIGHUP else signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        app = create_app(options, log, shared, checkpoints=n == 0)
        gc.freeze()  # what start-up made lives as long as the worker: the collector need not walk it again
        # proxy_headers off: a client's address is never used, and reading forwarded ones cost every request
        # ws off: the app has no WebSocket, and an upgrade would leave guarded_protocol
        server = uvicorn.Server(
            uvicorn.Config(app, http=protocol, ws="none", log_level="warning", access_log=False, proxy_headers=False)
        )

        def watch():
            os.read(alive, 1)  # returns when the parent's end closes: a stop, or the parent's death
            server.should_exit = True

        threading.Thread(target=watch, daemon=True).start()
        server.run(sockets=[sockets[n]])
        code = 0
    except BaseException:  # noqa: BLE001 (told, then the parent stops the others)
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
