"""The processes of `edge serve`: the listening sockets, the workers (each a whole server on the port, see
edge.server.app) and the main process that watches them."""
import gc
import os
import signal
import socket
import sys
import threading
import traceback

from edge.errors import EdgeError
from edge.server import store
from edge.server.app import create_app
from edge.server.options import LOOPBACK, ServeOptions
from edge.server.state import Shared


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
            raise EdgeError(f"cannot listen on {host}:{port} ({e.strerror}): another program (an edge serve "
                            "already running?) has it, or choose another --port or --host") from None
        sock.listen(2048)
        return sock

    first = bound(reuse_port=False)  # taken by anything at all (another edge serve's workers too): the error
    if count == 1 or sys.platform != "linux":
        return [first] * count
    first.close()
    return [bound(reuse_port=True) for _ in range(count)]


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
    store.open_db(options.db).close()  # creates (or upgrades) the store, or tells why not, before a worker starts
    sockets = listen(options.host, options.port, options.workers)
    if options.host not in LOOPBACK:
        log(f"listening on {options.host}: tokens cross the network in the clear unless a TLS proxy (nginx, "
            "Caddy) is in front")
        if not options.protect_reads:
            log("--open-reads: anyone who can reach this port reads every device's reports")
    reads = "reads need a token" if options.protect_reads else "reads are open"
    log(f"edge serve: dashboard at http://{options.host}:{options.port}/ ({reads}), storing into {options.db}, "
        f"{options.workers} worker{'s' * (options.workers > 1)}")
    shared = Shared()
    alive, parent = os.pipe()  # a worker stops when this process's end closes
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)  # until a worker has its own handlers
    workers = [_worker(options, sockets, n, shared, alive, parent, log) for n in range(options.workers)]
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
            log(f"edge serve: a worker ended ({'signal ' + str(-crashed) if crashed < 0 else 'exit ' + str(crashed)})"
                ": stopping the others")
            stop()
    if crashed is not None:
        sys.exit(1)


def _worker(options: ServeOptions, sockets: list, n: int, shared: Shared, alive: int, parent: int, log) -> int:
    """Fork worker `n`: its pid, here; there, serve on sockets[n] until told to stop (by a signal or by
    `alive` ending). Worker 0 makes the checkpoints."""
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
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, proxy_headers=False))

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
