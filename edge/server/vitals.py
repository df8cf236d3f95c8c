"""What the host keeps of each device's latest report to watch it by (its `vitals`, a small row beside the big
`latest` in `devices`), and whether the device is online, late or offline.

A device reports once a window (`edge run --report-every`, 10 s by default), so the host knows when the next
report is due: the latest window's length. A device is late once LATE windows have passed without a report, and
offline after OFFLINE, each plus SLACK seconds for a POST's way (a retry, a batch waiting its turn). A device
stopped on purpose looks offline too: the host cannot tell a stop from a loss, only that nothing comes.
"""

DRIFT_LEVELS = {"ok": 0, "watch": 1, "drift": 2}  # as numbers, for /metrics; "too few" frames is no level
LATE, OFFLINE = 2, 5  # report windows without a report
SLACK = 5.0  # seconds
STATES = ("online", "late", "offline")
WORDS = ("throttled_now", "throttled_since_boot")  # edge.health's figures that are lists of words; the rest, numbers


def from_report(report: dict) -> dict:
    """A report's figures the host watches: its window's length (the device's report interval), frame rate, p50
    inference latency, drift level and health figures (edge.health). Small: the device list and /metrics read
    every device's."""
    window = report["window"]
    # a figure of another kind than its own (the schema allows both) is left out
    health = {key: v for key, v in _part(report, "health").items() if isinstance(v, list) == (key in WORDS)}
    return {
        "interval": window["end"] - window["start"],
        "fps": report.get("fps"),
        "latency_ms": _part(_part(report, "latency_ms"), "inference").get("p50"),
        "drift": _part(report, "drift").get("level"),
        "health": health,
    }


def _part(value: dict, key: str) -> dict:
    """value[key] where it is a dict, else {}: a store's older reports were taken before some parts were
    checked (a version 6 host took any "health")."""
    part = value.get(key)
    return part if isinstance(part, dict) else {}


def interval(kept: dict | None) -> float:
    """Seconds between a device's reports, by its vitals (none kept: the shortest, a second)."""
    return max((kept or {}).get("interval") or 0.0, 1.0)  # a window of an instant is due at once


def state(kept: dict | None, last_seen: float, now: float) -> str:
    """online, late or offline: how long since the device's last report (received at `last_seen`, host time)
    against its report interval (`kept`: its vitals)."""
    every, age = interval(kept), now - last_seen
    if age <= LATE * every + SLACK:
        return "online"
    return "late" if age <= OFFLINE * every + SLACK else "offline"
