"""Rollouts on a real `edge serve` (edge.server.rollouts): canaries first, told through the answers to their
reports; promoted when the guard holds on what they reported, rolled back without a person when it does not."""

import hashlib
import re
import time
import uuid

import pytest

from edge.report import make_report
from edge.signing import create_keys
from tests.browser import CHROMIUM
from tests.bundles import carried_bundle
from tests.hostile import NUL_TEXT
from tests.reports import window_summary
from tests.server import Server, token
from tests.test_dashboard import render
from tests.test_models_server import push

LABELS = ["cat", "dog"]
DEVICES = ("pi-1", "pi-2", "pi-3")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory, new_db):
    """A host with digits@1 and @2 pushed, and three devices that have reported under @1 (pi-3 last)."""
    tmp = tmp_path_factory.mktemp("rollouts")
    db = new_db()
    publisher = token(db, "ci", "--publisher")
    tokens = {
        "publisher": publisher,
        "reader": token(db, "ops", "--reader"),
        **{device: token(db, device) for device in DEVICES},
    }
    server = Server(db, None, "--protect-reads").start()
    host = {"server": server, "tokens": tokens, "key": create_keys(tmp / "keys")[0]}
    shas = {}
    for version in (1, 2, 3):
        folder = carried_bundle(tmp / f"v{version}", f"TFL3 digits, version {version}".encode())
        assert push(host, folder)[1]["version"] == version
        shas[version] = hashlib.sha256((folder / "model.tflite").read_bytes()).hexdigest()
    fleet = {**host, "shas": shas, "run": {d: uuid.uuid4().hex for d in DEVICES}, "seq": dict.fromkeys(DEVICES, 0)}
    for device in DEVICES:
        report(fleet, device, 1, right=9, ago=100)
        time.sleep(0.01)  # pi-3 reports last: the canary
    yield fleet
    fleet["server"].stop()  # the one running now: a test restarts the host


def report(fleet, device, version, right, ago=0.0, windows=3):
    """`windows` reports of 40 frames under digits@`version`, `right` of each 10 frames classified right;
    their windows begin `ago` seconds back (0: now, as a device's first window under a new version). The answer."""
    pairs = [(0, 0)] * (4 * right) + [(0, 1)] * (4 * (10 - right))
    summary = window_summary(LABELS, pairs)
    now = time.time() - ago
    batch = []
    for i in range(windows):
        fleet["seq"][device] += 1
        start = now + i * 0.01
        batch.append(
            make_report(
                summary, device, fleet["run"][device], fleet["seq"][device], fleet["shas"][version], start, start + 0.01
            )
        )
    status, answer = fleet["server"].post(batch, fleet["tokens"][device])
    assert status == 200, answer
    return answer


def start(fleet, body):
    return fleet["server"].request("POST", "/api/v1/rollouts", body, fleet["tokens"]["publisher"])


def wait_for(fleet, model, state, seconds=15.0):
    deadline = time.time() + seconds
    while time.time() < deadline:
        status, found = fleet["server"].get(f"/api/v1/rollouts?model={model}", fleet["tokens"]["reader"])
        assert status == 200
        if found["rollouts"] and found["rollouts"][0]["state"] == state:
            return found["rollouts"][0]
        time.sleep(0.2)
    raise AssertionError(f"no rollout reached {state}: {found}")


def test_a_good_version_goes_to_the_canary_then_everyone_and_a_bad_one_comes_back(fleet):
    status, started = start(fleet, {"model": "digits", "version": 2, "canary": 1, "watch": 1.5})
    assert status == 201 and started["state"] == "canary" and started["canaries"] == ["pi-3"], started
    assert report(fleet, "pi-3", 1, right=9)["run"] == {"model": "digits", "version": 2}
    assert "run" not in report(fleet, "pi-1", 1, right=9)  # not yet told
    report(fleet, "pi-3", 2, right=9)
    promoted = wait_for(fleet, "digits", "promoted")
    assert "the guard held on the canaries (120 frames, accuracy 0.900" in promoted["history"][-1]["event"]
    for device in DEVICES:
        assert report(fleet, device, 2, right=9)["run"] == {"model": "digits", "version": 2}
    done = wait_for(fleet, "digits", "done")
    assert [d["running"] for d in done["devices"]] == [["digits", 2]] * 3

    status, started = start(fleet, {"model": "digits", "version": 3, "canary": 1, "watch": 1.5})
    assert status == 201
    canary = started["canaries"][0]
    report(fleet, canary, 3, right=2)  # labels permuted, say: sure of itself, and wrong
    failed = wait_for(fleet, "digits", "failed")
    assert "field accuracy 0.200 on 120 frames under digits@3 against 0.900 before" in failed["reason"], failed
    assert report(fleet, canary, 3, right=2)["run"] == {"model": "digits", "version": 2}  # back to what it ran
    others = [d for d in DEVICES if d != canary]
    assert all(report(fleet, d, 2, right=9)["run"] == {"model": "digits", "version": 2} for d in others)


def test_rollouts_that_cannot_be_are_refused_with_what_to_do(fleet):
    server, tokens = fleet["server"], fleet["tokens"]
    assert start(fleet, {"model": "digits", "version": 9})[0] == 404
    status, answer = start(fleet, {"model": "digits", "version": 2, "devices": ["pi-1", "pi-nowhere"]})
    assert status == 422 and "no reports from pi-nowhere: a device joins a rollout once it has" in answer["error"]
    assert start(fleet, {"model": "digits", "version": 2, "canary": 4})[0] == 422
    assert start(fleet, {"model": "digits", "version": 2, "watch": -1})[0] == 422
    status, answer = start(fleet, {"model": "digits", "version": 2, "guard": {"top1_drop": "lots"}})
    assert status == 422 and answer["error"].startswith("guard: --guard top1_drop=lots: give a number")
    assert start(fleet, {"model": "digits", "version": 2, "guard": {"nonsense": 1}})[0] == 422
    status, answer = server.request("POST", "/api/v1/rollouts", {"model": "digits", "version": 2}, tokens["pi-1"])
    assert status == 403 and "pushing models needs a publisher token" in answer["error"]
    assert server.get("/api/v1/rollouts", tokens["pi-1"])[0] == 403

    assert start(fleet, {"model": "digits", "version": 1, "devices": ["pi-1", "pi-2"], "watch": 3600})[0] == 201
    status, answer = start(fleet, {"model": "digits", "version": 1})
    assert status == 409 and "a rollout of digits is under way: wait for it, or abort it" in answer["error"]
    status, aborted = server.request("POST", "/api/v1/rollouts/digits/abort", b"", tokens["publisher"])
    assert status == 200 and aborted["state"] == "aborted", aborted
    assert report(fleet, aborted["canaries"][0], 2, right=9)["run"] == {"model": "digits", "version": 2}
    assert server.request("POST", "/api/v1/rollouts/digits/abort", b"", tokens["publisher"])[0] == 404


@pytest.mark.skipif(CHROMIUM is None, reason="needs chromium (apt install chromium)")
def test_the_dashboard_shows_each_rollout_its_devices_and_its_history(fleet, tmp_path):
    server, tokens = fleet["server"], fleet["tokens"]
    status, started = start(fleet, {"model": "digits", "version": 1, "devices": ["pi-1"], "watch": 3600})
    assert status == 201
    try:
        dom = render(f"{server.url}/?token={tokens['reader']}", tmp_path / "profile", "--dump-dom")
    finally:
        server.request("POST", "/api/v1/rollouts/digits/abort", b"", tokens["publisher"])
    assert 'data-loaded="yes"' in dom and '<section id="rollouts">' in dom
    assert re.search(
        r'<div class="rollout" data-state="canary"><h3>digits@1: canary, started \d+ s ago by ci</h3>', dom
    ), dom[:3000]
    assert re.search(r"<tr><td>pi-1</td><td>canary</td><td>digits@1</td><td>digits@\d</td></tr>", dom)
    assert re.search(r"<li>[^<]*: started by ci: digits@1 to 1 canary\(ies\) of 1: pi-1</li>", dom)


def test_a_rollout_goes_on_after_the_host_restarts(fleet):
    """The host down mid-canary: its devices keep their model (their reports wait in their outboxes); the
    rollout is in the database, and the restarted host judges it and promotes."""
    status, started = start(fleet, {"model": "digits", "version": 1, "devices": ["pi-2"], "watch": 1.0})
    assert status == 201
    report(fleet, "pi-2", 1, right=9)  # the canary under digits@1
    server = fleet["server"]
    server.stop()
    time.sleep(1.5)  # the watch ends while the host is down
    fleet["server"] = server = Server(server.db, server.port, "--protect-reads").start()
    promoted = wait_for(fleet, "digits", "promoted")
    assert promoted["id"] == started["id"] and "the guard held on the canaries" in promoted["history"][-1]["event"]


def test_a_new_rollout_supersedes_one_that_waits_for_a_device(fleet):
    """Promoted, but a device has not reported since (switched off, say): the next rollout of the model is
    not held up; the one before ends as superseded."""
    status, first = start(
        fleet, {"model": "digits", "version": 3, "canary": 1, "watch": 1.0, "guard": {"min_frames": 40}}
    )
    assert status == 201
    report(fleet, first["canaries"][0], 3, right=9)
    wait_for(fleet, "digits", "promoted")  # the other devices never report under it
    status, second = start(fleet, {"model": "digits", "version": 2, "watch": 3600})
    assert status == 201, second
    _, found = fleet["server"].get("/api/v1/rollouts?model=digits", fleet["tokens"]["reader"])
    states = {r["id"]: r["state"] for r in found["rollouts"]}
    assert states[first["id"]] == "superseded" and states[second["id"]] == "canary"
    assert fleet["server"].request("POST", "/api/v1/rollouts/digits/abort", b"", fleet["tokens"]["publisher"])[0] == 200


def test_the_rest_follow_in_waves_each_judged_allowing_for_what_the_whole_fleet_saw(fleet):
    """digits@3 in two waves after the canary, at dusk: every device's accuracy falls from 0.9 to 0.6, on the
    old version as on the new, and the guard lays that on the dusk, not on digits@3. Then digits@2, bad on
    wave 1: the canary and wave 1 both go back."""
    for device in DEVICES:
        report(fleet, device, 2, right=9, ago=5)
    status, started = start(fleet, {"model": "digits", "version": 3, "canary": 1, "waves": 2, "watch": 1.0})
    assert status == 201 and (started["canaries"], started["waves"]) == (["pi-3"], [["pi-2"], ["pi-1"]]), started
    status, answer = start(fleet, {"model": "digits", "version": 3, "canary": 1, "waves": 3})
    assert status == 422 and "--waves 3: give 1 to 2 (the targets after the canaries)" in answer["error"]
    assert start(fleet, {"model": "digits", "version": 3, "waves": True})[0] == 422
    report(fleet, "pi-3", 3, right=6)
    for device in ("pi-2", "pi-1"):  # (told digits@3 by the promoted rollout the last test superseded)
        report(fleet, device, 2, right=6)
    wave = wait_for(fleet, "digits", "wave")
    assert "the guard held on the canaries (120 frames, accuracy 0.600" in wave["history"][-1]["event"], wave
    assert re.search(r"expected: \d+ frames, accuracy 0.600", wave["history"][-1]["event"])  # 0.9 - (0.9 - 0.6)
    assert wave["history"][-1]["event"].endswith("wave 1 of 2: pi-2")
    assert start(fleet, {"model": "digits", "version": 2})[0] == 409  # a wave is judged: not superseded
    assert report(fleet, "pi-2", 3, right=6)["run"] == {"model": "digits", "version": 3}
    report(fleet, "pi-1", 2, right=6)
    promoted = wait_for(fleet, "digits", "promoted")
    assert promoted["history"][-1]["event"].startswith("the guard held on wave 1 (120 frames, accuracy 0.600")
    for device in DEVICES:
        assert report(fleet, device, 3, right=9)["run"] == {"model": "digits", "version": 3}
    wait_for(fleet, "digits", "done")

    status, started = start(fleet, {"model": "digits", "version": 2, "canary": 1, "waves": 2, "watch": 1.0})
    assert status == 201
    canary, first = started["canaries"][0], started["waves"][0][0]
    report(fleet, canary, 2, right=9)
    wait_for(fleet, "digits", "wave")
    report(fleet, first, 2, right=2)
    failed = wait_for(fleet, "digits", "failed")
    assert re.fullmatch(
        r"field accuracy 0.200 on 120 frames under digits@2 against 0.[78]\d\d before \(a drop over "
        r"0.05\): the 2 devices moved were rolled back",
        failed["reason"],
    ), failed["reason"]
    assert all(report(fleet, d, 2, right=9)["run"] == {"model": "digits", "version": 3} for d in (canary, first))


def test_names_holding_a_nul_are_refused_never_a_500(fleet):
    status, answer = start(fleet, {"model": "digits", "version": 1, "devices": [NUL_TEXT]})
    assert status == 422 and "device '" in answer["error"], answer
    status, answer = start(fleet, {"model": NUL_TEXT, "version": 1})
    assert status == 422 and "model name '" in answer["error"], answer
