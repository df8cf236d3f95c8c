"""`edge models push` as an API (edge.publish): a bundle signed and pushed to a real `edge serve`, only the files
the host lacks sent, and the host's refusals as one line that never holds the token."""

import time

import pytest

from edge.errors import HostError, OptionError
from edge.publish import abort_rollout, list_models, push_model, rollout_status, start_rollout
from edge.report import make_report
from edge.signing import create_keys
from tests.bundles import carried_bundle
from tests.reports import window_summary
from tests.server import Server, free_port, token


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("publish")
    db = tmp / "edge.db"
    publisher = token(db, "ci", "--publisher")
    device = token(db, "pi-kitchen")
    private, _ = create_keys(tmp / "keys")
    server = Server(db).start()
    yield {"url": server.url, "server": server, "publisher": publisher, "device": device, "key": private}
    server.stop()


def test_a_push_sends_only_what_the_host_lacks_and_a_retry_keeps_the_number(host, tmp_path):
    first = carried_bundle(tmp_path / "v1")
    pushed = push_model(first, "digits", host["url"], host["publisher"], host["key"])
    size = sum(f.stat().st_size for f in first.iterdir())
    assert (pushed.name, pushed.version, pushed.new, pushed.files, pushed.bytes_sent) == ("digits", 1, True, 3, size)
    again = push_model(first, "digits", host["url"], host["publisher"], host["key"])
    assert (again.version, again.new, again.bytes_sent, again.bytes_held) == (1, False, 0, size)
    second = carried_bundle(tmp_path / "v2", b"TFL3 retrained")
    pushed = push_model(second, "digits", host["url"], host["publisher"], host["key"])
    labels = (second / "labels.txt").stat().st_size
    assert (pushed.version, pushed.bytes_held) == (2, labels)  # labels.txt unchanged: not sent again
    assert [m["version"] for m in list_models(host["url"], host["publisher"], "digits")] == [2, 1]
    assert pushed.to_json()["key_id"] == pushed.key_id and len(pushed.key_id) == 16


def test_the_host_s_refusals_are_one_line_without_the_token(host, tmp_path):
    folder = carried_bundle(tmp_path / "b")
    url, publisher, device, key = host["url"], host["publisher"], host["device"], host["key"]
    cases = [
        (
            (url, device),
            HostError,
            "answered HTTP 403: 'pi-kitchen' has a device token; pushing models needs a "
            "publisher token (edge token create NAME --publisher)",
        ),
        ((url, "not-a-token"), HostError, "answered HTTP 401: unknown or revoked token"),
        ((f"http://127.0.0.1:{free_port()}", publisher), HostError, "is edge serve running there, and the URL"),
        (
            (f"http://ci:{publisher}@127.0.0.1:1", publisher),
            OptionError,
            "--host: give the host's URL without a user name or password",
        ),
    ]
    for (where, secret), kind, message in cases:
        with pytest.raises(kind) as e:
            push_model(folder, "digits", where, secret, key)
        assert message in str(e.value) and "\n" not in str(e.value), str(e.value)
        assert publisher not in str(e.value) and device not in str(e.value)
    with pytest.raises(HostError, match="model name 'a b': letters, digits"):
        push_model(folder, "a b", url, publisher, key)


def test_a_rollout_is_started_read_and_aborted_through_the_api(host, tmp_path):
    pushed = push_model(
        carried_bundle(tmp_path / "b", b"TFL3 cams"), "cams", host["url"], host["publisher"], host["key"]
    )
    summary = window_summary(["cat", "dog"], [(0, 0)] * 10)
    report = make_report(summary, "pi-kitchen", "run-00000001", 0, "a" * 64, time.time(), time.time() + 1)
    assert host["server"].post([report], host["device"])[0] == 200
    started = start_rollout(host["url"], host["publisher"], f"cams@{pushed.version}", watch=3600, guard="top1_drop=0.2")
    assert started["state"] == "canary" and started["canaries"] == ["pi-kitchen"]
    assert started["guard"]["top1_drop"] == 0.2 and started["guard"]["accuracy_drop"] == 0.05
    assert [r["state"] for r in rollout_status(host["url"], host["publisher"], "cams")] == ["canary"]
    assert abort_rollout(host["url"], host["publisher"], "cams")["state"] == "aborted"
    with pytest.raises(OptionError, match="'cams': give a model version as NAME@VERSION, e.g. digits@2"):
        start_rollout(host["url"], host["publisher"], "cams")
    with pytest.raises(HostError, match="answered HTTP 404: no model cams@9: push it first"):
        start_rollout(host["url"], host["publisher"], "cams@9")
    with pytest.raises(HostError, match="answered HTTP 422: --waves 2: give 1 to 1 "):  # one device: no rest to split
        start_rollout(host["url"], host["publisher"], f"cams@{pushed.version}", waves=2)
