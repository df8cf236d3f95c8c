"""Rollouts: which model version each device is told to run, and the staged way a version gets there.

A rollout of NAME@V moves its canaries first (the targets that reported last: they are up); after the watch,
`advance` compares what they reported under V with what they reported before, allowing for the change the
targets not yet moved saw over the same time (edge.server.guard). If the guard holds, the rest follow in
waves: each but the last is watched and judged the same way ("wave"); the last is told and the rollout is
"promoted", then "done" once every target has reported under V. If the guard fails at any stage, every device
the rollout moved is told to run what it ran before and the rollout ends "failed", the reason in numbers.
`abort` moves every device the rollout moved back. One rollout of a model at a time: a
new one is refused while another's canaries or a wave are judged, and supersedes one that is promoted (a device that
has not reported since, switched off, say, would otherwise hold the model's rollouts up for good).

A device is told through the answer to its reports (`assignment`): the host's word is an `assignments` row,
version NULL meaning "the model you were started with". A device runs NAME@V when its latest report names
it (`model_version`: {"model", "version"}) or carries the sha256 of that version's model file.
"""

import json
import math
import time

from edge.errors import EdgeError
from edge.report import check_name
from edge.server import guard as guards
from edge.server.database import lock, transaction
from edge.server.releases import Refused

ACTIVE = ("canary", "wave", "promoted")
ROLLOUTS = "rollouts"  # the lock every change of a rollout takes: they are few, and read each other's state
WATCH = 600.0  # seconds the canaries run the new version before it is judged
CANARY_SHARE = 0.1  # of the targets, at least one
BEFORE = 50  # a canary's latest reports under the version before: what the new one is compared with


def start(
    db,
    model: str,
    version: int,
    devices: list | None,
    canary: int | None,
    waves: int | None,
    watch: float | None,
    guard: guards.Guard,
    by: str,
    now: float | None = None,
) -> dict:
    """Begin a rollout; refused (Refused) for a version that does not exist or is withdrawn, a model already
    rolling out, or no target device. What it reads, it reads under the write lock."""
    now = time.time() if now is None else now
    watch = WATCH if watch is None else watch
    try:  # names a database's text can hold, looked up as they are
        check_name(model, "model name")
        for device in devices or []:
            check_name(device, "device")
    except EdgeError as e:
        raise Refused(422, str(e)) from None
    if not (math.isfinite(watch) and 0 < watch <= 30 * 86400):
        raise Refused(422, f"--watch {watch}: give seconds, more than 0 and at most 30 days, e.g. {WATCH:g}")
    with transaction(db):
        lock(db, ROLLOUTS)
        row = db.execute("SELECT withdrawn FROM models WHERE name = ? AND version = ?", (model, version)).fetchone()
        if row is None:
            raise Refused(404, f"no model {model}@{version}: push it first (edge models push)")
        if row[0] is not None:
            raise Refused(409, f"{model}@{version} is withdrawn: roll out another version")
        targets, canaries, planned = _stages(db, devices, canary, waves)
        previous = json.dumps({d: running(db, d) for d in targets})
        _take_over(db, model, version, now)
        (rollout,) = db.execute(
            "INSERT INTO rollouts (model, version, state, targets, canaries, previous, watch, guard, started, "
            "stage_started, started_by, waves) VALUES (?, ?, 'canary', ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (model, version, json.dumps(targets), json.dumps(canaries), previous, watch, json.dumps(guard.to_json()))
            + (now, now, by, json.dumps(planned)),
        ).fetchone()
        _assign(db, canaries, model, version, rollout, now)
        told = f"{model}@{version} to {len(canaries)} canary(ies) of {len(targets)}: {', '.join(canaries)}"
        _event(db, rollout, now, f"started by {by}: {told}")
    return status(db, rollout)


def _stages(db, devices: list | None, canary: int | None, waves: int | None) -> tuple[list, list, list]:
    """The targets (`devices`, None: every device that has reported), the canaries among them (the ones heard
    from last: they are up) and the waves the rest are split into, in the same order."""
    known = [name for (name,) in db.execute("SELECT device FROM devices ORDER BY last_seen DESC")]
    targets = known if devices is None else list(devices)
    unknown = sorted(set(targets) - set(known))
    if unknown:
        raise Refused(
            422,
            f"no reports from {', '.join(unknown[:5])}: a device joins a rollout once it has reported (edge run "
            "--report-to)",
        )
    if not targets:
        raise Refused(422, "no devices to roll out to: none has reported yet")
    count = canary if canary is not None else max(1, math.ceil(CANARY_SHARE * len(targets)))
    if not 1 <= count <= len(targets):
        raise Refused(422, f"--canary {count}: give 1 to {len(targets)} (the targets)")
    heard = [d for d in known if d in set(targets)]
    canaries, rest = heard[:count], heard[count:]
    waves = 1 if waves is None else waves
    if not 1 <= waves <= max(1, len(rest)):
        raise Refused(422, f"--waves {waves}: give 1 to {max(1, len(rest))} (the targets after the canaries)")
    planned = [rest[i * len(rest) // waves : (i + 1) * len(rest) // waves] for i in range(waves)] if rest else []
    return targets, canaries, planned


def _take_over(db, model: str, version: int, now: float) -> None:
    """Refuse a rollout while another of the model is judged; end one that is promoted, waiting for devices to
    report under it (one switched off would hold the model's rollouts up for good)."""
    active = db.execute(f"SELECT id, state FROM rollouts WHERE model = ? AND state IN {ACTIVE}", (model,)).fetchone()
    if active and active[1] != "promoted":  # its canaries or a wave are being judged
        raise Refused(409, f"a rollout of {model} is under way: wait for it, or abort it (edge rollout abort {model})")
    if active:
        _end(db, {"id": active[0]}, "superseded", now, f"{model}@{version} rolled out after it")


def running(db, device: str) -> list | None:
    """[name, version] of the version a device's latest report was made under, if the host knows it."""
    row = db.execute("SELECT latest FROM devices WHERE device = ?", (device,)).fetchone()
    if row is None:
        return None
    return _version_of(db, json.loads(row[0]))


def _version_of(db, report: dict) -> list | None:
    named = report.get("model_version")  # {"model", "version"}, as a following device says (edge.follow)
    if isinstance(named, dict) and isinstance(named.get("model"), str) and isinstance(named.get("version"), int):
        return [named["model"], named["version"]]
    found = db.execute(
        "SELECT name, version FROM models WHERE model_sha256 = ? ORDER BY version DESC", (report["model_sha256"],)
    ).fetchone()
    return list(found) if found else None


def advance(db, now: float | None = None) -> None:
    """Move every active rollout on as far as its time and its devices' reports allow."""
    now = time.time() if now is None else now
    for (rollout,) in db.execute(f"SELECT id FROM rollouts WHERE state IN {ACTIVE}").fetchall():
        with transaction(db):
            lock(db, ROLLOUTS)
            r = _row(db, rollout)
            if r["state"] in ACTIVE:  # read again under the lock: an abort may have ended it since the listing
                _advance(db, r, now)


def _advance(db, r: dict, now: float) -> None:
    version = [r["model"], r["version"]]
    label = f"{r['model']}@{r['version']}"
    judged = _stage(r) if r["state"] != "promoted" else []
    refusals = [
        f"{device} refused {label} ({why})" for device in judged for why in [_refusal(db, device, label)] if why
    ]
    if refusals:  # no need to wait out the watch: it will not run there
        _fail(db, r, now, "; ".join(refusals))
    elif judged and now - r["stage_started"] >= r["watch"]:
        guard = guards.Guard(**r["guard"])
        new = guards.measure(_reports(db, judged, version, r["stage_started"], None))
        before = _baseline(db, r, judged, guard)
        reasons = guards.verdict(guard, new, before, label)
        if reasons:
            _fail(db, r, now, "; ".join(reasons))
            return
        stage = r["stage"] + 1
        wave = r["waves"][stage - 1] if stage <= len(r["waves"]) else []  # none: the canaries were every target
        last = stage >= len(r["waves"])
        _assign(db, wave, r["model"], r["version"], r["id"], now)
        db.execute(
            "UPDATE rollouts SET state = ?, stage = ?, stage_started = ? WHERE id = ?",
            ("promoted" if last else "wave", stage, now, r["id"]),
        )
        told = f"wave {stage} of {len(r['waves'])}" if len(r["waves"]) > 1 else "the rest"
        _event(
            db,
            r["id"],
            now,
            f"the guard held on {_who(r)} ({_numbers(new)}; expected: {_numbers(before)}): "
            + (f"promoted to all {len(r['targets'])}" if last else f"{told}: {', '.join(wave)}"),
        )
    elif r["state"] == "promoted" and all(running(db, d) == version for d in r["targets"]):
        _end(db, r, "done", now, f"every target runs {label}")


def _stage(r: dict) -> list:
    """The devices the current stage moved: the canaries, or wave `stage`."""
    return r["canaries"] if r["stage"] == 0 else r["waves"][r["stage"] - 1]


def _moved(r: dict) -> list:
    """Every device the rollout has told to run its version so far."""
    return r["canaries"] + [d for wave in r["waves"][: r["stage"]] for d in wave]


def _who(r: dict) -> str:
    return "the canaries" if r["stage"] == 0 else f"wave {r['stage']}"


def _fail(db, r: dict, now: float, why: str) -> None:
    moved = _moved(r)
    _back(db, r, moved, now)
    _end(
        db,
        r,
        "failed",
        now,
        f"{why}: "
        + ("the canaries were rolled back" if r["stage"] == 0 else f"the {len(moved)} devices moved were rolled back"),
    )


def _refusal(db, device: str, label: str) -> str | None:
    """Why the device's latest report says it refused `label` (NAME@V: a bad signature, a failed check), if it
    does."""
    row = db.execute("SELECT latest FROM devices WHERE device = ?", (device,)).fetchone()
    refused = json.loads(row[0]).get("model_refused") if row else None
    return refused.get(label) if isinstance(refused, dict) else None


def _back(db, r: dict, devices: list, now: float) -> None:
    """Tell `devices` to run what they ran before."""
    for device in devices:
        back = r["previous"].get(device)
        _assign(db, [device], back[0] if back else r["model"], back[1] if back else None, r["id"], now)


def _reports(db, devices: list, version: list | None, since: float, until: float | None) -> list[dict]:
    """The reports of `devices` made under `version` (None: any) whose windows began at `since` or later (ended
    by `until`)."""
    found = []
    for device in devices:
        for (body,) in db.execute(
            "SELECT body FROM reports WHERE device = ? AND window_start >= ? AND window_end <= ?",
            (device, since, math.inf if until is None else until),
        ):
            report = json.loads(body)
            if version is None or _version_of(db, report) == version:
                found.append(report)
    return found


def _baseline(db, r: dict, judged: list, guard: guards.Guard) -> dict:
    """What the judged devices are held to: their own reports under the version each ran before the rollout,
    moved by the change the targets not yet moved saw over the same time (guards.expected); when one of them
    has none, those targets' reports over the stage, as they are."""
    waiting = [d for d in r["targets"] if d not in _moved(r)]
    during = _reports(db, waiting, None, r["stage_started"], None)
    own = {
        device: [
            report
            for report in _latest(db, [device], r["started"])
            if r["previous"].get(device) is None or _version_of(db, report) == r["previous"][device]
        ]
        for device in judged
    }
    if not all(own.values()):
        return guards.measure([report for reports in own.values() for report in reports] + during)
    return guards.expected(
        guards.measure([report for reports in own.values() for report in reports]),
        guards.measure(_latest(db, waiting, r["started"])),
        guards.measure(during),
        guard.min_frames,
    )


def _latest(db, devices: list, until: float) -> list[dict]:
    """Each device's latest BEFORE reports that ended by `until`."""
    return [
        json.loads(body)
        for device in devices
        for (body,) in db.execute(
            "SELECT body FROM reports WHERE device = ? AND window_end <= ? ORDER BY window_end DESC LIMIT ?",
            (device, until, BEFORE),
        )
    ]


def _numbers(m: dict) -> str:
    shown = {
        "top1_mean": "top-1 {:.3f}",
        "accuracy": "accuracy {:.3f}",
        "latency_p50_ms": "p50 {:.2f} ms",
        "drift_share": "{:.0%} at drift",
    }
    return ", ".join([f"{m['frames']} frames"] + [form.format(m[k]) for k, form in shown.items() if m[k] is not None])


def abort(db, model: str, by: str, now: float | None = None) -> dict:
    """Stop the model's active rollout and move every device it moved back to what it ran before."""
    now = time.time() if now is None else now
    with transaction(db):
        lock(db, ROLLOUTS)
        row = db.execute(f"SELECT id FROM rollouts WHERE model = ? AND state IN {ACTIVE}", (model,)).fetchone()
        if row is None:
            raise Refused(404, f"no rollout of {model} is under way: see them with edge rollout status {model}")
        r = _row(db, row[0])
        moved = _moved(r)
        _back(db, r, moved, now)
        _end(db, r, "aborted", now, f"aborted by {by}: {len(moved)} device(s) moved back")
    return status(db, r["id"])


def assignment(db, device: str) -> dict | None:
    """What the answer to a device's report tells it to run: {"model", "version"} (version None: the model it
    was started with), or None when no rollout has named it."""
    row = db.execute("SELECT model, version FROM assignments WHERE device = ?", (device,)).fetchone()
    return None if row is None else {"model": row[0], "version": row[1]}


def status(db, rollout: int) -> dict:
    """A rollout as `edge rollout status` shows it: its stage, each target's assigned and running version, and
    its history."""
    r = _row(db, rollout)
    devices = []
    for device in r["targets"]:
        told = assignment(db, device)
        wave = next((i + 1 for i, devices_of in enumerate(r["waves"]) if device in devices_of), None)
        devices.append(
            {
                "device": device,
                "canary": device in r["canaries"],
                "wave": wave,
                "told": told,
                "running": running(db, device),
            }
        )
    history = [
        {"at": at, "event": event}
        for at, event in db.execute(
            "SELECT at, event FROM rollout_events WHERE rollout = ? ORDER BY at, rowid", (rollout,)
        )
    ]
    return {**{k: v for k, v in r.items() if k != "targets"}, "devices": devices, "history": history}


def rollouts(db, model: str | None = None) -> list[dict]:
    """Every rollout (of `model`), newest first."""
    return [
        status(db, rollout)
        for (rollout,) in db.execute(
            "SELECT id FROM rollouts WHERE CAST(? AS TEXT) IS NULL OR model = ? ORDER BY id DESC", (model, model)
        ).fetchall()
    ]


def _row(db, rollout: int) -> dict:
    cursor = db.execute("SELECT * FROM rollouts WHERE id = ?", (rollout,))
    r = dict(zip([c[0] for c in cursor.description], cursor.fetchone(), strict=True))
    return {**r, **{k: json.loads(r[k]) for k in ("targets", "canaries", "previous", "guard", "waves")}}


def _assign(db, devices: list, model: str, version: int | None, rollout: int, now: float) -> None:
    db.executemany(
        "INSERT INTO assignments (device, model, version, rollout, since) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (device) DO UPDATE SET model = excluded.model, version = excluded.version, "
        "rollout = excluded.rollout, since = excluded.since",
        [(d, model, version, rollout, now) for d in devices],
    )


def _end(db, r: dict, state: str, now: float, reason: str) -> None:
    db.execute("UPDATE rollouts SET state = ?, ended = ?, reason = ? WHERE id = ?", (state, now, reason, r["id"]))
    _event(db, r["id"], now, f"{state}: {reason}")


def _event(db, rollout: int, now: float, event: str) -> None:
    db.execute("INSERT INTO rollout_events (rollout, at, event) VALUES (?, ?, ?)", (rollout, now, event))
