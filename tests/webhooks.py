"""A web hook for the tests: a real HTTP server on a free loopback port, in a thread, that keeps the JSON it
is sent and answers as told (a status a request in turn, or hanging)."""

import http.server
import json
import threading
import time

from tests.server import free_port


class Receiver:
    """Answers each POST with the next of `statuses` (the last one again once they run out), after `delay`
    seconds; keeps the bodies of those it answered 2xx. Connections are kept open (HTTP/1.1) until `idle`
    seconds pass without a request, as web servers close them; `connections` counts those made."""

    def __init__(self, statuses=(200,), delay: float = 0.0, idle: float | None = None):
        self.statuses, self.delay = list(statuses), delay
        self.bodies: list[dict] = []
        self.requests = self.connections = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = idle

            def setup(self):
                super().setup()
                with receiver.lock:
                    receiver.connections += 1

            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    status = receiver.statuses[min(receiver.requests, len(receiver.statuses) - 1)]
                    receiver.requests += 1
                time.sleep(receiver.delay)
                if 200 <= status < 300:
                    with receiver.lock:
                        receiver.bodies.append(json.loads(body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.port = free_port()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[dict]:
        with self.lock:
            return list(self.bodies)

    def __enter__(self) -> "Receiver":
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
