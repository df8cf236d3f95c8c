"""A device following the host's model versions (edge.follow): a release fetched from a real `edge serve`,
verified with the trusted key, resumed after a cut, checked in a fresh interpreter; a kill -9 at any step
leaves a whole model; a version that keeps failing to start is reverted by the device itself."""

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge.errors import EdgeError
from edge.follow import (
    MAX_STARTS,
    Follower,
    FollowOptions,
    activate,
    check_bundle,
    fetch,
    healthy,
    read_state,
    starting,
)
from edge.signing import create_keys
from tests.bundles import padded_copy
from tests.server import Server, token
from tests.test_models_server import push

V1 = {"model": "digits", "version": 1}


@pytest.fixture(scope="module")
def host(e2e, tmp_path_factory):
    """A host holding the e2e bundle as digits@1, a device token, and the key pair it was signed with."""
    tmp = tmp_path_factory.mktemp("follow")
    db = tmp / "edge.db"
    publisher = token(db, "ci", "--publisher")
    private, public = create_keys(tmp / "keys")
    server = Server(db).start()
    found = {
        "server": server,
        "url": server.url,
        "tokens": {"publisher": publisher},
        "key": private,
        "public": public,
        "device": token(db, "pi-kitchen"),
        "tmp": tmp,
    }
    assert push(found, Path(e2e.bundle))[1]["version"] == 1
    yield found
    server.stop()


def options(host, tmp_path, public=None):
    return FollowOptions(follow=True, trust=(public or host["public"],), models=tmp_path / "models")


def test_a_version_is_fetched_verified_checked_and_started_again_after_a_restart(host, tmp_path, e2e):
    opts = options(host, tmp_path)
    folder = fetch(opts, host["url"], host["device"], V1)
    assert folder == tmp_path / "models" / "digits@1" and not list((tmp_path / "models").glob(".*partial"))
    model = check_bundle(folder, 1, None)
    assert model.labels == e2e.labels
    activate(opts, V1)
    assert read_state(opts.models)["active"] == V1
    assert starting(opts, print) == folder  # verified again, from its release
    assert read_state(opts.models)["starts"] == {"digits@1": 2}


def test_a_cut_download_resumes_and_a_wrong_byte_starts_it_over(host, tmp_path, e2e):
    opts = options(host, tmp_path)
    partial = opts.models / ".digits@1.partial"
    partial.mkdir(parents=True)
    model = (Path(e2e.bundle) / "model.tflite").read_bytes()
    (partial / "model.tflite").write_bytes(model[: len(model) // 2])  # cut half-way
    assert (fetch(opts, host["url"], host["device"], V1) / "model.tflite").read_bytes() == model
    other = options(host, tmp_path / "other")
    partial = other.models / ".digits@1.partial"
    partial.mkdir(parents=True)
    (partial / "model.tflite").write_bytes(b"\0" * (len(model) // 2))  # not what the host holds
    with pytest.raises(EdgeError, match="model.tflite does not match its signed sha256"):
        fetch(other, host["url"], host["device"], V1)
    assert not partial.exists()  # so the next try fetches it whole
    assert fetch(other, host["url"], host["device"], V1).is_dir()


def test_a_release_signed_by_an_untrusted_key_is_refused_and_nothing_is_kept(host, tmp_path):
    _, stranger = create_keys(tmp_path / "stranger")
    opts = options(host, tmp_path, stranger)
    with pytest.raises(EdgeError, match="digits@1 from the host is not signed by a trusted key"):
        fetch(opts, host["url"], host["device"], V1)
    assert not (opts.models / "digits@1").exists()


def test_a_withdrawn_version_is_not_fetched(host, tmp_path, e2e):
    version = push(host, padded_copy(e2e.bundle, tmp_path / "withdrawn"), "old")[1]["version"]
    assert (
        host["server"].request("POST", f"/api/v1/models/old/{version}/withdraw", b"", host["tokens"]["publisher"])[0]
        == 200
    )
    opts = options(host, tmp_path)
    with pytest.raises(EdgeError, match=f"old@{version} is withdrawn on the host: it is not run"):
        fetch(opts, host["url"], host["device"], {"model": "old", "version": version})
    assert not list(opts.models.glob("*old*"))


def test_a_version_that_keeps_failing_to_start_or_no_longer_verifies_is_set_aside(host, tmp_path):
    opts = options(host, tmp_path)
    fetch(opts, host["url"], host["device"], V1)
    activate(opts, V1)
    said = []
    for _ in range(MAX_STARTS - 1):  # activate counted the first start
        assert starting(opts, said.append) is not None
    healthy(opts)  # a run that classified enough frames
    for _ in range(MAX_STARTS):
        assert starting(opts, said.append) is not None
    assert starting(opts, said.append) is None and not said[:-1]  # crashed MAX_STARTS runs in a row: the model given
    assert f"digits@1 is set aside: it started {MAX_STARTS} runs without classifying 100 frames" in said[-1]
    activate(opts, V1)
    model = opts.models / "digits@1" / "model.tflite"
    model.write_bytes(model.read_bytes()[:-1] + b"x")
    assert starting(opts, said.append) is None and "does not match its signed sha256" in said[-1]


def test_the_follower_fetches_what_the_host_names_and_hands_over_a_checked_model(host, tmp_path):
    said = []
    follower = Follower(options(host, tmp_path), host["url"], host["device"], threads=1, log=said.append)
    try:
        follower.told(V1)
        deadline = time.time() + 30
        while follower.ready is None and time.time() < deadline:
            time.sleep(0.05)
        version, model = follower.take()
        assert (
            version == V1 and model.labels and said == ["digits@1 is verified and checked: it runs from the next frame"]
        )
        assert follower.take() is None and read_state(tmp_path / "models")["active"] == V1
        follower.told({"model": "digits", "version": 7})
        deadline = time.time() + 10
        while not follower.failed and time.time() < deadline:
            time.sleep(0.05)
        assert "digits@7 is not run: the host answered HTTP 404: no model digits@7" in said[-1]
    finally:
        follower.close()


def test_the_follower_hands_back_the_model_given_when_the_host_names_it(host, tmp_path, e2e):
    """A rollback to a device's own model: version None, loaded by the run's loader (it knows the labels and
    input range of a bare file); answers of another shape are no word of the host's."""
    given = check_bundle(Path(e2e.bundle), 1, None)
    follower = Follower(
        options(host, tmp_path), host["url"], host["device"], log=print, given=lambda: given, running=V1
    )
    try:
        for hostile in (
            {"model": "../etc", "version": 1},
            {"model": "digits", "version": 0},
            ["digits", 1],
            {"model": "digits", "version": 1, "more": 1},
        ):
            follower.told(hostile)
        assert follower.wanted is None
        follower.told({"model": "digits", "version": None})
        deadline = time.time() + 10
        while follower.ready is None and time.time() < deadline:
            time.sleep(0.05)
        assert follower.take() == ({"model": "digits", "version": None}, given)
    finally:
        follower.close()


def test_a_full_disk_keeps_the_model_that_runs_and_leaves_no_half_version(host, tmp_path, small_disk):
    """The models folder on a 4 MB disk that a file has filled: the follower says so in one line and the run
    keeps its model; nothing half-written is ever taken for a version."""
    (small_disk / "filler").write_bytes(b"\0" * (4 * 2**20 - 64 * 1024))
    said = []
    follower = Follower(
        FollowOptions(follow=True, trust=(host["public"],), models=small_disk / "models"),
        host["url"],
        host["device"],
        log=said.append,
    )
    try:
        follower.told(V1)
        deadline = time.time() + 15
        while not said and time.time() < deadline:
            time.sleep(0.05)
    finally:
        follower.close()
    assert follower.ready is None and len(said) == 1, said
    assert said[0].startswith(
        f"fetching digits@1 into {small_disk / 'models'}: No space left on device; keeping the model that runs"
    ), said
    assert not (small_disk / "models" / "digits@1").exists()
    (small_disk / "filler").unlink()  # space again: the next try finishes what was cut
    assert fetch(
        FollowOptions(follow=True, trust=(host["public"],), models=small_disk / "models"),
        host["url"],
        host["device"],
        V1,
    ).is_dir()


KILLED = """
import sys
from pathlib import Path
from edge.follow import FollowOptions, activate, fetch
opts = FollowOptions(follow=True, trust=(sys.argv[1],), models=Path(sys.argv[2]))
print("go", flush=True)
for version in (1, 2):
    fetch(opts, sys.argv[3], sys.argv[4], {"model": "digits", "version": version})
    activate(opts, {"model": "digits", "version": version})
print("done", flush=True)
"""


def test_a_kill_at_any_step_leaves_a_whole_model_old_or_new(host, tmp_path, e2e):
    """The device killed (SIGKILL) at moments spread over fetching and activating two versions (timed from
    when its imports are done): each time, the next start finds a version that verifies, or none (the model
    given), never a broken one."""
    bundle = tmp_path / "v2"
    shutil.copytree(e2e.bundle, bundle)
    manifest = json.loads((bundle / "edge.json").read_text())
    (bundle / "edge.json").write_text(json.dumps({**manifest, "note": "v2"}))
    assert push(host, bundle)[1]["version"] == 2
    seen = []
    for n, delay in enumerate((0, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.08, 0.12, None)):
        models = tmp_path / f"models{n}"
        process = subprocess.Popen(
            [sys.executable, "-c", KILLED, str(host["public"]), str(models), host["url"], host["device"]],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert process.stdout.readline() == "go\n"
        if delay is None:  # the last one runs to its end
            assert process.stdout.readline() == "done\n"
        else:
            time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
        said = []
        found = starting(FollowOptions(follow=True, trust=(host["public"],), models=models), said.append)
        assert not said, said  # nothing set aside: whatever is active verified
        seen.append(found.name if found else None)
    assert seen[0] is None and seen[-1] == "digits@2", seen  # killed before anything was whole, and after
