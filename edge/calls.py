"""The calls a device makes, sent where people act on them (`edge run --publish mqtt://... --webhook URL`): what
it sees, once a label has led `--hold` frames in a row, and each report window's metrics, as events.

A camera dwells, so the frames' labels come in runs; one frame of another label between two of a run is
noise, not a call. An event is made on the frame loop and handed to the outlets (edge.mqtt, edge.webhook),
each of which sends from a thread of its own and keeps a bounded queue: the loop never waits on a broker or a
web server, and what is past the bound is dropped and counted.
"""

import socket
import time
from dataclasses import dataclass

from edge.errors import EdgeError, OptionError, whole
from edge.mqtt import Publisher, broker
from edge.options import option
from edge.report import check_name
from edge.webhook import Hook, webhook_url

HOLD = 3  # frames a label leads before it is called
FLUSH = 3.0  # seconds at the end of a run for what is queued to go out
MAX_HOLD = 1000  # frames: past it, a call would come half a minute late at 30 fps


@dataclass(frozen=True)
class CallOptions:
    """Where `edge run` sends its calls (RunOptions.calling): an MQTT broker, a webhook, or both."""

    publish: str | None = option(
        None,
        "Publish the calls and report windows to an MQTT broker: mqtt[s]://[USER@]HOST[:PORT]/TOPIC_PREFIX, "
        "e.g. mqtt://homeassistant.local/edge (the password: $EDGE_MQTT_PASSWORD).",
    )
    mqtt_password: str | None = option(
        None,
        "The broker's password for USER [$EDGE_MQTT_PASSWORD: set it there, since other users see a command "
        "line in ps].",
        secret=True,
        envvar="EDGE_MQTT_PASSWORD",
    )
    webhook: str | None = option(
        None,
        "POST the same events as JSON to this URL [$EDGE_WEBHOOK: a webhook's URL is often its secret].",
        secret=True,
        envvar="EDGE_WEBHOOK",
    )
    hold: int = option(HOLD, "A new call once a label has led this many frames in a row.")
    discovery: bool = option(
        True,
        "Announce the device to Home Assistant (MQTT discovery under homeassistant/), so it shows as sensors.",
        flag="--ha-discovery/--no-ha-discovery",
    )
    required: bool = option(
        False,
        "Stop the run (exit 2) when the broker refuses the credentials or the webhook refuses the URL "
        "[say so and go on].",
        flag="--calls-required",
    )

    device: str | None = None  # the name events carry: --device-id [this machine's host name]

    def __post_init__(self):
        if self.device is not None:
            check_name(self.device)
        if self.publish is None and self.webhook is None:
            raise OptionError("give --publish mqtt://HOST/PREFIX, --webhook URL, or both")
        if self.publish is not None:
            broker(self.publish)
        if self.webhook is not None:
            webhook_url(self.webhook)
        if self.mqtt_password is not None and (self.publish is None or broker(self.publish).user is None):
            raise OptionError("$EDGE_MQTT_PASSWORD is the password of --publish's user: give mqtt://USER@HOST/PREFIX")
        if not whole(self.hold, 1, MAX_HOLD):
            raise OptionError(f"--hold {self.hold}: give a whole number of frames, 1 to {MAX_HOLD}, e.g. 3")


def device_name(device_id: str | None) -> str:
    """The name events carry: --device-id, else this machine's host name."""
    if device_id:
        return device_id
    host = socket.gethostname().split(".")[0]
    try:
        return check_name(host, "this machine's host name")
    except EdgeError:
        raise OptionError(
            f"this machine's host name {host!r} cannot name the device in its events: give --device-id NAME, or "
            "give the machine a name of letters, digits, '-' and '_' (hostnamectl set-hostname)"
        ) from None


class CallTracker:
    """Which label the device calls: the one that has led `hold` frames in a row. `see` says when it changes."""

    def __init__(self, hold: int):
        self.hold = hold
        self.call: str | None = None
        self._leader: str | None = None
        self._run = 0

    def see(self, label: str) -> bool:
        """Take a frame's label; True when it makes a new call (the first, or another label than the last)."""
        self._run = self._run + 1 if label == self._leader else 1
        self._leader = label
        if self._run == self.hold and label != self.call:
            self.call = label
            return True
        return False


def call_event(device: str, label: str, score: float, frame: int, at: float, model: dict) -> dict:
    """A call as it is sent: what, how sure, when (Unix time), at which frame, and by which model."""
    return {
        "device": device,
        "label": label,
        "score": round(score, 4),
        "at": round(at, 3),
        "frame": frame,
        "model": model,
    }


def window_event(report: dict) -> dict:
    """A report window's metrics as they are sent: frames, rate, latency, field accuracy, drift level."""
    return {
        "device": report["device_id"],
        "start": report["window"]["start"],
        "end": report["window"]["end"],
        "frames": report["frames"],
        "fps": report["fps"],
        "latency_ms": report["latency_ms"]["inference"]["p50"],
        "accuracy": report.get("accuracy") if report["evaluated"] else None,
        "drift": (report.get("drift") or {}).get("level"),
        **({"health": report["health"]} if "health" in report else {}),
    }


class Caller:
    """A run's calls (after pycoral's explicit life cycle): made (the outlets connect from their threads), fed
    a frame at a time and a report window at a time, closed (what is queued goes out for up to FLUSH s)."""

    def __init__(self, options: CallOptions, device: str, log):
        self.options, self.device = options, device
        self.tracker = CallTracker(options.hold)
        self.calls = 0
        self.outlets: dict = {}
        if options.publish:
            self.outlets["mqtt"] = Publisher(
                broker(options.publish), options.mqtt_password, device, log, options.discovery
            )
        if options.webhook:
            self.outlets["webhook"] = Hook(options.webhook, log)

    def frame(self, label: str, score: float, frame: int, model) -> None:
        """A frame's label: an event when it makes a new call (`model()`: the model that made it, asked then)."""
        if self.tracker.see(label):
            self.calls += 1
            self.send("call", call_event(self.device, label, score, frame, time.time(), model()))

    def window(self, report: dict) -> None:
        self.send("window", window_event(report))

    def send(self, kind: str, event: dict) -> None:
        for outlet in self.outlets.values():
            outlet.send(kind, event)

    def refused(self) -> str | None:
        """With --calls-required, why the run is to stop: a broker or hook refused the credentials."""
        if not self.options.required:
            return None
        return next((outlet.refused for outlet in self.outlets.values() if outlet.refused), None)

    def close(self) -> dict:
        """Say goodbye and send what is queued (each outlet for up to FLUSH s); what each did."""
        done = {"calls": self.calls, "device": self.device}
        for name, outlet in self.outlets.items():
            done[name] = outlet.close(FLUSH)
        return done
