"""`edge run --follow-models` end to end: a real `edge serve`, a rollout naming a version, the device that swaps
it in between two frames without closing its source, reports made under it, a restart that starts on it, and
and an abort that sends it back to the version it ran before."""

import json
import shutil
from pathlib import Path

import pytest

from edge.signing import create_keys
from tests.bundles import padded_copy
from tests.cli import edge_cli
from tests.server import Server, token
from tests.test_models_server import push
from tests.videos import scan_video

FRAMES = 150  # 5 s at 30 fps


@pytest.fixture(scope="module")
def setup(e2e, digits, tmp_path_factory):
    """A host holding digits@1 (the e2e bundle) and digits@2 (the same network in a model file of its own), a
    device token, and a video of one digit's scans."""
    tmp = tmp_path_factory.mktemp("follow-run")
    db = tmp / "edge.db"
    publisher = token(db, "ci", "--publisher")
    private, public = create_keys(tmp / "keys")
    server = Server(db).start()
    host = {"server": server, "tokens": {"publisher": publisher}, "key": private}
    second = padded_copy(e2e.bundle, tmp / "v2")
    assert push(host, Path(e2e.bundle))[1]["version"] == 1 and push(host, second)[1]["version"] == 2
    video = scan_video(tmp / "digit.avi", Path(digits) / "2", FRAMES)
    yield {
        **host,
        "device": token(db, "pi-kitchen"),
        "public": public,
        "video": video,
        "tmp": tmp,
        "bundle": e2e.bundle,
    }
    server.stop()


def run(setup, *more, model=None, device=("pi-kitchen", None)):
    """`edge run` following the host, on the bundle given (or `model`) as the device (name, token) given."""
    tmp, (name, device_token) = setup["tmp"], device
    r = edge_cli(
        "run",
        model or setup["bundle"],
        "--source",
        setup["video"],
        "--truth",
        "2",
        "--report-to",
        setup["server"].url,
        "--token",
        device_token or setup["device"],
        "--device-id",
        name,
        "--report-every",
        0.2,
        "--outbox",
        tmp / f"outbox-{name}.db",
        "--follow-models",
        "--trust",
        setup["public"],
        "--models-dir",
        tmp / f"models-{name}",
        "--json",
        "-",
        *more,
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout), r.stderr


def test_the_device_runs_what_the_host_names_and_starts_on_it_again(setup):
    server, publisher = setup["server"], setup["tokens"]["publisher"]
    first, _ = run(setup, "--max-frames", 20)  # reported: now it can join a rollout
    assert first["following"] == {
        "version": None,
        "swaps": [],
        "refused": {},
        "restart_for": None,
        "downloaded_bytes": 0,
    }
    status, _ = server.request("POST", "/api/v1/rollouts", {"model": "digits", "version": 2, "watch": 3600}, publisher)
    assert status == 201
    summary, said = run(setup, "--realtime")
    swaps = summary["following"]["swaps"]
    assert [s["to"] for s in swaps] == ["digits@2"] and summary["following"]["version"] == "digits@2", said
    assert summary["frames"] + summary["dropped"] == FRAMES and summary["failures"] == 0  # the source ran on
    assert summary["source"] == first["source"] != "bundle"  # the frames' source, not the model's kind
    assert "digits@2 is verified and checked: it runs from the next frame" in said
    bundle_bytes = sum(
        p.stat().st_size
        for p in (setup["tmp"] / "models-pi-kitchen" / "digits@2").iterdir()
        if p.name != "release.json"
    )
    assert summary["following"]["downloaded_bytes"] == bundle_bytes  # each file once
    _, found = server.get("/api/v1/devices/pi-kitchen/reports?limit=1000", publisher)
    versions = [r.get("model_version") for r in found["reports"] if r["run_id"] == summary["reporting"]["run_id"]]
    changes = [i for i in range(1, len(versions)) if versions[i] != versions[i - 1]]
    assert versions[0] is None and versions[-1] == {"model": "digits", "version": 2} and len(changes) == 1, versions
    assert {r["source"] for r in found["reports"] if r["run_id"] == summary["reporting"]["run_id"]} == {first["source"]}
    again, _ = run(setup, "--max-frames", 30)  # a restart: on digits@2 from its first frame
    assert again["following"]["version"] == "digits@2" and again["following"]["swaps"] == []
    assert again["model"].endswith("models-pi-kitchen/digits@2/model.tflite")

    assert server.request("POST", "/api/v1/rollouts/digits/abort", b"", publisher)[0] == 200
    back, said = run(setup, "--realtime")  # back to what it ran before: the bundle given, which is digits@1
    assert [s["to"] for s in back["following"]["swaps"]] == ["digits@1"], said
    assert back["following"]["version"] == "digits@1"


def test_a_version_a_canary_refuses_ends_its_rollout_at_once(setup, e2e):
    """Signed by a key the device does not trust: the device keeps its model and its reports say why; the host
    fails the rollout on that word, without waiting out the watch."""
    server, publisher = setup["server"], setup["tokens"]["publisher"]
    stranger = {**setup, "key": create_keys(setup["tmp"] / "stranger")[0]}
    assert push(stranger, padded_copy(padded_copy(e2e.bundle, setup["tmp"] / "v3a"), setup["tmp"] / "v3"))[0] == 201
    status, _ = server.request("POST", "/api/v1/rollouts", {"model": "digits", "version": 3, "watch": 3600}, publisher)
    assert status == 201
    summary, said = run(setup, "--realtime")
    assert list(summary["following"]["refused"]) == ["digits@3"] and not summary["following"]["swaps"], said
    _, found = server.get("/api/v1/rollouts?model=digits", publisher)
    failed = found["rollouts"][0]
    assert failed["state"] == "failed" and failed["reason"].startswith(
        "pi-kitchen refused digits@3 (digits@3 from the host is not signed by a trusted key"
    )


def test_following_needs_a_host_and_a_trusted_key(setup):
    r = edge_cli("run", setup["bundle"], "--source", setup["video"], "--follow-models")
    assert r.returncode == 2 and "--follow-models needs --trust KEYDIR/edge-sign.pub" in r.stderr
    r = edge_cli("run", setup["bundle"], "--source", setup["video"], "--follow-models", "--trust", setup["public"])
    assert r.returncode == 2 and "--follow-models hears the version to run in the host's answers" in r.stderr
    r = edge_cli("run", setup["bundle"], "--source", setup["video"], "--trust", setup["public"])
    assert r.returncode == 2 and "--trust is for --follow-models" in r.stderr


def test_a_run_on_a_model_without_a_fingerprint_swaps_in_one_with_it(setup):
    """A bare .tflite has no fingerprint, the version the host names has one: the run goes on under it, its
    reports judged against the new fingerprint; the run's own summary has no drift, as its model had none."""
    server, publisher, bare = setup["server"], setup["tokens"]["publisher"], setup["tmp"] / "bare"
    bare.mkdir()
    for name in ("model.tflite", "labels.txt"):
        shutil.copy(Path(setup["bundle"]) / name, bare / name)
    lo, hi = json.loads((Path(setup["bundle"]) / "edge.json").read_text())["input"]["range"]
    device = ("pi-hall", token(server.db, "pi-hall"))
    given = (bare / "model.tflite", "--labels", bare / "labels.txt", "--input-range", f"{lo},{hi}")
    run(setup, "--max-frames", 20, *given[1:], model=given[0], device=device)  # reported: it can join a rollout
    status, _ = server.request(
        "POST", "/api/v1/rollouts", {"model": "digits", "version": 2, "devices": ["pi-hall"], "watch": 3600}, publisher
    )
    assert status == 201
    try:
        summary, said = run(setup, "--realtime", *given[1:], model=given[0], device=device)
    finally:
        assert server.request("POST", "/api/v1/rollouts/digits/abort", b"", publisher)[0] == 200
    assert [s["to"] for s in summary["following"]["swaps"]] == ["digits@2"], said
    assert "drift" not in summary
    _, found = server.get("/api/v1/devices/pi-hall/reports?limit=1000", publisher)
    ran = [r for r in found["reports"] if r["run_id"] == summary["reporting"]["run_id"]]
    assert [r.get("model_version") is not None for r in ran] == [r.get("drift") is not None for r in ran], ran
    assert ran[-1].get("model_version") == {"model": "digits", "version": 2}
