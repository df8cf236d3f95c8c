"""The host watching its devices: a device gone offline, overheating, or drifting raises an alert, kept in
`alerts` until it clears, and shown in the device list; with `edge serve --alert-webhook URL` each raise and each
clear is POSTed there as JSON (edge.webhook: a bounded queue, retries, never in a request's way).

One worker of each host watches (the one that checkpoints), every TICK seconds, from what the devices' rows keep
(edge.server.vitals), never their reports. Hosts sharing one database each watch, and a change is theirs who
writes it (an alert is one row, made or removed once): one POST whoever saw it first, none again after a restart.
So give every host the same --alert-webhook.

Thresholds hold on a little past the line they were raised at (a CPU at 79.9 °C after 80.1 °C is still hot), so a
figure hovering at a line does not send an alert every window.
"""

import asyncio
import time
from collections.abc import Iterator

import orjson
from starlette.concurrency import run_in_threadpool

from edge.server import store, vitals
from edge.server.database import transaction
from edge.webhook import Hook

HOT_C, COOL_C = 80.0, 75.0  # a Pi 4/5's firmware caps its clock from 80 °C; cleared only below 75
HOT_FLAG = "soft-temperature-limit"  # edge.health's word for the firmware's own temperature cap
KINDS = ("offline", "overheating", "drift")
TICK = 5.0  # seconds between looks
FLUSH = 3.0  # seconds to send the alerts still queued when the host stops


def conditions(vitals_now: dict | None, state: str, held: dict[str, float], last_seen: float) -> dict[str, dict]:
    """{kind: detail} of the alerts a device is in: its vitals, its state (edge.server.vitals), and the alerts it
    is in already, {kind: since} (`held`: they clear only past the line back; offline only once a report came
    after it was raised: hosts whose clocks differ by a few seconds would otherwise raise and clear it in turn)."""
    found: dict[str, dict] = {}
    kept = vitals_now or {}
    if state == "offline" or last_seen <= held.get("offline", float("-inf")):
        found["offline"] = {"interval": vitals.interval(vitals_now)}
    health = kept.get("health") or {}
    temperature, flags = health.get("cpu_temp_c"), health.get("throttled_now") or []
    line = COOL_C if "overheating" in held else HOT_C
    if (temperature is not None and temperature >= line) or HOT_FLAG in flags:
        found["overheating"] = {"cpu_temp_c": temperature, "throttled_now": flags}
    level = kept.get("drift")
    if level == "drift" or (level == "watch" and "drift" in held):
        found["drift"] = {"level": level}
    return found


def check(db, now: float) -> Iterator[dict]:
    """Raise and clear every device's alerts as they stand at `now` (Unix time): the event of each change this
    call makes, as soon as it is committed (a later failure loses none of them; another host's call may have
    made some first: those are its own to send)."""
    held: dict[str, dict[str, float]] = {}
    for device, kind, since in db.execute("SELECT device, kind, since FROM alerts").fetchall():
        held.setdefault(device, {})[kind] = since
    for device, last_seen, _, kept in store.watched(db):
        figures = orjson.loads(kept) if kept else None
        mine = held.get(device, {})
        found = conditions(figures, vitals.state(figures, last_seen, now), mine, last_seen)
        for kind in [k for k in KINDS if k in found and k not in mine]:
            with transaction(db):
                made = db.execute(
                    "INSERT INTO alerts (device, kind, since, detail) VALUES (?, ?, ?, ?) ON CONFLICT (device, kind) "
                    "DO NOTHING RETURNING since",
                    (device, kind, now, orjson.dumps(found[kind]).decode()),
                ).fetchone()
            if made:
                yield event(device, kind, "raised", now, {"last_seen": last_seen, **found[kind]})
        for kind in [k for k in KINDS if k in mine and k not in found]:
            with transaction(db):
                gone = db.execute("DELETE FROM alerts WHERE device = ? AND kind = ? RETURNING since", (device, kind))
                since = gone.fetchone()
            if since:
                yield event(device, kind, "cleared", now, {"since": since[0], **_now(kind, figures)})


def _now(kind: str, figures: dict | None) -> dict:
    """What a cleared alert's figure is now."""
    kept = figures or {}
    if kind == "overheating":
        return {"cpu_temp_c": (kept.get("health") or {}).get("cpu_temp_c")}
    return {"level": kept.get("drift")} if kind == "drift" else {}


def event(device: str, kind: str, change: str, now: float, detail: dict) -> dict:
    """An alert as the hook gets it: what, about whom, when, its figures, and a line a chat shows."""
    figures = {"device": device, "alert": kind, "state": change, "at": now, **detail}
    return {**figures, "text": f"edge: {device} " + TEXTS[kind, change](figures)}


# (kind, change) -> what the line says after the device's name
TEXTS = {
    ("offline", "raised"): lambda e: (
        f"is offline: no report for {e['at'] - e['last_seen']:.0f} s (it reports every {e['interval']:g} s)"
    ),
    ("offline", "cleared"): lambda e: "is reporting again",
    ("overheating", "raised"): lambda e: (
        "is overheating"
        + (f": CPU at {e['cpu_temp_c']} °C" if e["cpu_temp_c"] is not None else "")
        + (", its firmware caps the clock" if HOT_FLAG in e["throttled_now"] else "")
    ),
    ("overheating", "cleared"): lambda e: (
        "has cooled down" + (f": CPU at {e['cpu_temp_c']} °C" if e["cpu_temp_c"] is not None else "")
    ),
    ("drift", "raised"): lambda e: "sees what its model was not trained on (drift)",
    ("drift", "cleared"): lambda e: f"drifts no more (level {e['level']})",
}


def active(db) -> dict[str, list[dict]]:
    """{device: [{"alert", "since", ...its figures}]} of every alert raised and not cleared."""
    found: dict[str, list[dict]] = {}
    for device, kind, since, detail in db.execute("SELECT device, kind, since, detail FROM alerts ORDER BY since"):
        found.setdefault(device, []).append({"alert": kind, "since": since, **orjson.loads(detail)})
    return found


def _look(db, hook: Hook | None, log) -> None:
    """One look: each change logged, and handed to the hook, as it is committed."""
    for change in check(db, time.time()):
        log(change["text"])
        if hook:
            hook.send("alert", change)


async def watch(db_path, hook_url: str | None, log) -> None:
    """Check the alerts every TICK until cancelled, on a connection of its own, off the event loop; each change
    logged, and POSTed to `hook_url` if given."""
    hook = Hook(hook_url, log, flag="--alert-webhook", announce=False) if hook_url else None
    db = await run_in_threadpool(store.open_db, db_path)
    try:
        while True:
            try:
                await run_in_threadpool(_look, db, hook, log)
            except Exception as e:  # noqa: BLE001 (a busy or unreachable database: the next look tries again)
                log(f"alerts could not be checked ({e}); trying again in {TICK:g} s")
            await asyncio.sleep(TICK)
    finally:
        db.close()
        if hook:
            await run_in_threadpool(hook.close, FLUSH)
