"""The rollouts' store (edge.server.rollouts_store) on a real SQLite file, where timing matters: the clock and a
person acting on the same rollout at once."""

import time
import uuid

import orjson

from edge.report import make_report
from edge.server import rollouts_store, store
from edge.server.guard import Guard
from tests.reports import window_summary

SHAS = {1: "a" * 64, 2: "b" * 64}


def test_an_abort_that_lands_while_the_clock_waits_for_the_lock_is_not_undone(tmp_path):
    """The clock lists the active rollouts, then takes the write lock for each: an abort committed in between
    must stand, not be judged and promoted to the whole fleet."""
    path = tmp_path / "edge.db"
    db = store.open_db(path)
    for version, sha in SHAS.items():
        db.execute("INSERT INTO models VALUES ('m', ?, ?, '{}', 'k', 'ci', 0, NULL, ?)", (version, f"r{version}", sha))
    runs = {device: uuid.uuid4().hex for device in ("pi-1", "pi-2")}
    summary = window_summary(["cat", "dog"], [(0, 0)] * 40)

    def post(device, version, start, first=1):
        reports = [
            make_report(summary, device, runs[device], first + i, SHAS[version], start + i / 100, start + (i + 1) / 100)
            for i in range(3)
        ]
        plain = orjson.loads(orjson.dumps(reports, option=orjson.OPT_SERIALIZE_NUMPY))  # as a POST's body comes
        store.store_posts(db, [("reports", device, plain)])

    now = time.time()
    post("pi-1", 1, now - 100)
    post("pi-2", 1, now - 99)
    canary = rollouts_store.start(db, "m", 2, None, 1, None, 0.5, Guard(), "ci", now=now)["canaries"][0]
    post(canary, 2, now + 0.1, first=10)  # a canary that does well: the guard would promote
    clock, person = store.open_db(path), store.open_db(path)
    aborted = []

    def abort_first(sql):
        if sql == "BEGIN IMMEDIATE" and not aborted:
            aborted.append(rollouts_store.abort(person, "m", "ops", now=now + 1)["state"])

    clock.set_trace_callback(abort_first)
    rollouts_store.advance(clock, now=now + 2)
    after = rollouts_store.rollouts(db, "m")[0]
    assert aborted == ["aborted"] and after["state"] == "aborted", after["history"]
    told = {d["device"]: d["told"] for d in after["devices"]}
    assert told == {canary: {"model": "m", "version": 1}, ({"pi-1", "pi-2"} - {canary}).pop(): None}, told
