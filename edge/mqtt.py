"""Events to an MQTT broker (`edge run --publish mqtt://HOST/PREFIX`), through paho-mqtt, from its thread.

Topics, each retained (a subscriber that comes later reads the latest) and sent at QoS 1 (the broker
acknowledges each):
    PREFIX/DEVICE/status   "online" once connected; "offline" at the end, and as the last will: the broker
                           says it for a device that vanished (killed, unplugged, its network gone)
    PREFIX/DEVICE/call     the current call (edge.calls.call_event)
    PREFIX/DEVICE/window   each report window's metrics (edge.calls.window_event)
and, unless --no-ha-discovery, Home Assistant's discovery messages, so the device shows there as sensors.

`send` only queues: paho's thread writes. While the broker is away (down at start, restarted, the network
gone) events wait in paho's queue, at most QUEUE of them; past it, an event is dropped and counted. paho
connects again by itself, waiting 0.5 s, doubling to 60 s.
"""

import json
import re
import threading
import time
import urllib.parse
from dataclasses import dataclass

from edge.errors import EdgeError, OptionError
from edge.version import VERSION, install_hint

QUEUE = 1000  # events waiting for the broker
ROOM = 16  # messages past QUEUE paho may hold: a connection's status and discovery
KEEPALIVE = 30  # seconds: a broker says the last will this long (x1.5) after a device falls silent
RECONNECT_FIRST, RECONNECT_MOST = 0.5, 60  # seconds
DISCOVERY = "homeassistant"  # Home Assistant's discovery prefix
MQTT_SCHEMES = {"mqtt": 1883, "mqtts": 8883}  # scheme: default port
REFUSED = {134: "bad user name or password", 135: "not authorized"}  # CONNACK reasons that a retry will not mend


@dataclass(frozen=True)
class Broker:
    """An MQTT broker and the topic prefix events go under."""

    host: str
    port: int
    tls: bool
    user: str | None
    prefix: str

    def shown(self) -> str:
        """The broker as logs and summaries name it (never a password: it is not in the URL)."""
        user = f"{self.user}@" if self.user else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}/{self.prefix}"


def broker(url: str) -> Broker:
    """mqtt[s]://[USER@]HOST[:PORT]/TOPIC_PREFIX, checked: no password (it would show in ps), a prefix of
    topic levels without MQTT's wildcards (+ #), which a publisher may not use, or a leading $ (the broker's)."""
    scheme, _, rest = str(url).partition("://")
    netloc, _, path = rest.partition("/")  # the prefix read raw: a URL parser takes its '#' for a fragment
    try:
        parts = urllib.parse.urlsplit(f"{scheme}://{netloc}")
        port = parts.port
        good = scheme in MQTT_SCHEMES and bool(parts.hostname) and "?" not in netloc
    except ValueError:
        good, port = False, None
    if not good:
        raise OptionError(
            "--publish: give mqtt[s]://[USER@]HOST[:PORT]/TOPIC_PREFIX, e.g. mqtt://homeassistant.local/edge"
        )
    if parts.password is not None:
        raise OptionError(
            "--publish: leave the password out of the URL (a command line shows in ps): set $EDGE_MQTT_PASSWORD"
        )
    prefix = path.strip("/")
    bad = next((c for c in "+#" if c in prefix), None)
    if not prefix or bad or prefix.startswith("$") or "//" in prefix or "\x00" in prefix:
        why = f"it holds {bad!r}, a wildcard" if bad else "it is not a topic"
        raise OptionError(
            f"--publish: the topic prefix {prefix!r}: {why}; give levels of letters, digits, '-', '_' and '/', "
            "e.g. mqtt://broker/edge or mqtt://broker/home/garage"
        )
    return Broker(
        parts.hostname or "",
        port or MQTT_SCHEMES[scheme],
        scheme == "mqtts",
        urllib.parse.unquote(parts.username) if parts.username else None,
        prefix,
    )


class Publisher:
    """One device's connection to a broker; `send` never blocks, `close` says goodbye and counts."""

    def __init__(self, broker: Broker, password: str | None, device: str, log, discovery: bool = True):
        try:
            from paho.mqtt import client as mqtt
        except ImportError:
            raise EdgeError(f"--publish needs paho-mqtt: {install_hint('mqtt')}") from None
        self.broker, self.device, self.log, self.discovery = broker, device, log, discovery
        self.base = f"{broker.prefix}/{device}"
        self.counts = {"published": 0, "acknowledged": 0, "dropped": 0}
        self.refused: str | None = None  # the broker's word, once it refused the credentials
        self.connected = threading.Event()
        self._lock = threading.Lock()
        self._troubled = False  # said so since the last connection
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"edge-{device}", protocol=mqtt.MQTTv311)
        if broker.user:
            client.username_pw_set(broker.user, password)
        if broker.tls:
            client.tls_set()
        client.will_set(f"{self.base}/status", "offline", qos=1, retain=True)
        client.reconnect_delay_set(RECONNECT_FIRST, RECONNECT_MOST)  # type: ignore[arg-type]  # paho takes floats
        client.max_queued_messages_set(QUEUE + ROOM)
        client.on_connect, client.on_disconnect, client.on_publish = self._connected, self._disconnected, self._acked
        client.on_connect_fail = self._unreachable
        self.client, self._full = client, mqtt.MQTT_ERR_QUEUE_SIZE
        client.connect_async(broker.host, broker.port, KEEPALIVE)
        client.loop_start()

    def send(self, kind: str, event: dict | str) -> None:
        """Queue `event` for PREFIX/DEVICE/KIND, retained; counted dropped when QUEUE wait already."""
        if self.unsent() >= QUEUE:
            with self._lock:
                self.counts["dropped"] += 1
            return
        self._send(f"{self.base}/{kind}", event if isinstance(event, str) else json.dumps(event))

    def _send(self, topic: str, payload: str) -> None:
        """Hand a message to paho (whose own bound leaves room past QUEUE for the status and discovery sent
        on each connection). Not connected is no loss at QoS 1: paho sends it once connected."""
        info = self.client.publish(topic, payload, qos=1, retain=True)
        with self._lock:  # the frame loop's thread and paho's both publish
            self.counts["dropped" if info.rc == self._full else "published"] += 1

    def close(self, wait: float) -> dict:
        """Say "offline", wait up to `wait` seconds for what is queued to be acknowledged, disconnect; the
        counts and how it ended."""
        self._send(f"{self.base}/status", "offline")
        deadline = time.monotonic() + wait
        while self.connected.is_set() and self.unsent() and time.monotonic() < deadline:
            time.sleep(0.01)
        self.client.disconnect()
        self.client.loop_stop()
        return {"broker": self.broker.shown(), **self.counts, "unsent": self.unsent(), "refused": self.refused}

    def unsent(self) -> int:
        """Events queued that the broker has not acknowledged."""
        with self._lock:
            return self.counts["published"] - self.counts["acknowledged"]

    def _connected(self, client, userdata, flags, reason, properties) -> None:
        if reason.is_failure:
            why = REFUSED.get(reason.value)
            if why and self.refused is None:
                self.refused = f"the broker {self.broker.shown()} refused {self.broker.user or 'anonymous'}: {why}"
                self.log(f"--publish: {self.refused}; check the user and $EDGE_MQTT_PASSWORD")
            elif not why:
                self._once(f"--publish: {self.broker.shown()} refused the connection ({reason}); trying again")
            return
        self.refused = None
        self.connected.set()
        self._troubled = False
        self._send(f"{self.base}/status", "online")
        if self.discovery:
            for topic, config in discovery(self.device, self.base).items():
                self._send(topic, json.dumps(config))

    def _disconnected(self, client, userdata, flags, reason, properties) -> None:
        self.connected.clear()
        if reason.is_failure and self.refused is None:
            self._once(f"--publish: lost {self.broker.shown()}; events wait (up to {QUEUE}) meanwhile, trying again")

    def _unreachable(self, client, userdata) -> None:
        self._once(
            f"--publish: cannot reach {self.broker.shown()}; events wait (up to {QUEUE}) meanwhile, trying again"
        )

    def _acked(self, client, userdata, mid, reason, properties) -> None:
        with self._lock:
            self.counts["acknowledged"] += 1

    def _once(self, message: str) -> None:
        """Log a connection trouble once until the next connection."""
        if not self._troubled:
            self._troubled = True
            self.log(message)


def discovery(device: str, base: str) -> dict:
    """Home Assistant's MQTT discovery: {topic: config} of the device's sensors (its call, how sure, its
    frame rate, drift level and CPU temperature), each unavailable while the device is offline."""
    node = f"edge_{topic_safe(device)}"
    about = {
        "availability_topic": f"{base}/status",
        "device": {"identifiers": [node], "name": device, "manufacturer": "edge", "sw_version": VERSION},
    }
    sensors = {
        "call": ("Call", "call", "{{ value_json.label }}", {"icon": "mdi:eye"}),
        "score": ("Call score", "call", "{{ value_json.score }}", {"state_class": "measurement"}),
        "fps": ("Frame rate", "window", "{{ value_json.fps }}", {"unit_of_measurement": "fps"}),
        "drift": ("Drift", "window", "{{ value_json.drift }}", {"icon": "mdi:chart-bell-curve"}),
        "temperature": (
            "CPU temperature",
            "window",
            "{{ value_json.health.cpu_temp_c }}",
            {"device_class": "temperature", "unit_of_measurement": "°C", "state_class": "measurement"},
        ),
    }
    return {
        f"{DISCOVERY}/sensor/{node}/{key}/config": {
            "name": name,
            "unique_id": f"{node}_{key}",
            "state_topic": f"{base}/{kind}",
            "value_template": template,
            "json_attributes_topic": f"{base}/{kind}",
            **extra,
            **about,
        }
        for key, (name, kind, template, extra) in sensors.items()
    }


def topic_safe(name: str) -> str:
    """A device's name as Home Assistant's discovery ids take it ([a-zA-Z0-9_-])."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)
