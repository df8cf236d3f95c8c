"""A throwaway MQTT broker for the tests: Debian's `mosquitto` on a free loopback port, from a config of its own
(`mosquitto -c CONF`), anonymous or with one user's password; and a subscriber that keeps what arrives."""

import getpass
import json
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from paho.mqtt import client as mqtt

from tests.server import free_port

INSTALL = "mosquitto is missing: apt-get install mosquitto (the README's test command does)"


class Broker:
    """mosquitto started on a free port; `stop`/`start` again on the same port; `user`: only that user, with
    `password`, may connect."""

    def __init__(self, user: str | None = None, password: str | None = None):
        if shutil.which("mosquitto") is None:
            raise RuntimeError(INSTALL)
        self.folder, self.port = Path(tempfile.mkdtemp(prefix="edge-mosquitto-")), free_port()
        conf = [f"listener {self.port} 127.0.0.1", f"user {getpass.getuser()}", "persistence false"]
        if user:
            subprocess.run(
                ["mosquitto_passwd", "-c", "-b", self.folder / "passwords", user, password or ""], check=True
            )
            conf += ["allow_anonymous false", f"password_file {self.folder / 'passwords'}"]
        else:
            conf.append("allow_anonymous true")
        (self.folder / "mosquitto.conf").write_text("\n".join(conf) + "\n")
        self.process: subprocess.Popen | None = None
        self.start()

    def start(self) -> "Broker":
        self.process = subprocess.Popen(
            ["mosquitto", "-c", str(self.folder / "mosquitto.conf")], stderr=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + 10
        while not _listening(self.port):
            if self.process.poll() is not None:
                raise RuntimeError(f"mosquitto did not start: {self.process.stderr.read()}")  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "mosquitto did not listen within 10 s"
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def url(self, prefix: str = "edge", user: str | None = None) -> str:
        return f"mqtt://{f'{user}@' if user else ''}127.0.0.1:{self.port}/{prefix}"

    def __enter__(self) -> "Broker":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


class Subscriber:
    """A client subscribed to `topic` (wildcards allowed) that keeps each message: (topic, text, retained,
    arrival time)."""

    def __init__(self, broker: Broker, topic: str = "#"):
        self.messages: list[tuple[str, str, bool, float]] = []
        self._arrived = threading.Condition()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-{time.monotonic_ns()}")
        self.client.on_message = self._message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.connect("127.0.0.1", broker.port)
        self.client.subscribe(topic, qos=1)
        self.client.loop_start()
        assert subscribed.wait(10), "the test's subscription was not acknowledged"

    def _message(self, client, userdata, message) -> None:
        with self._arrived:
            self.messages.append((message.topic, message.payload.decode(), bool(message.retain), time.time()))
            self._arrived.notify_all()

    def wait_for(self, found, within: float = 20.0):
        """The first message `found(topic, text)` is true of, waiting up to `within` seconds for it."""
        deadline = time.monotonic() + within
        with self._arrived:
            while True:
                hit = next((m for m in self.messages if found(m[0], m[1])), None)
                if hit:
                    return hit
                left = deadline - time.monotonic()
                assert left > 0, f"no such message within {within} s; had {[m[:2] for m in self.messages][-10:]}"
                self._arrived.wait(left)

    def on(self, topic: str) -> list:
        """The texts that arrived on `topic`, JSON read where it is JSON."""
        with self._arrived:
            texts = [text for t, text, _, _ in self.messages if t == topic]
        return [json.loads(text) if text[:1] in "{[" else text for text in texts]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
