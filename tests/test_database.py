"""The host's stores through edge.server.database on both backends: a SQLite file and a real PostgreSQL
(a throwaway cluster, tests/postgres.py). The same calls give the same answers."""

import hashlib
import threading
import time
import uuid

import cv2
import orjson
import pytest

from edge.errors import EdgeError
from edge.report import make_report
from edge.server import database, releases, rollouts_store, store
from edge.server.database import redacted
from edge.server.guard import Guard
from edge.server.urls import REFUSAL
from edge.signing import create_keys, sign_bundle
from tests.bundles import carried_bundle
from tests.cli import edge_cli
from tests.postgres import Cluster
from tests.reports import window_summary
from tests.server import Server, token
from tests.test_server_frames import record


def reports(device, n, right=10, start=1.8e9):
    summary = window_summary(["cat", "dog"], [(0, 0)] * right + [(0, 1)] * (10 - right))
    run = uuid.uuid4().hex
    made = [make_report(summary, device, run, i, "a" * 64, start + i, start + i + 0.5) for i in range(n)]
    return orjson.loads(orjson.dumps(made, option=orjson.OPT_SERIALIZE_NUMPY))  # as a POST's body comes


def test_reports_are_stored_once_and_read_back_as_they_came(db):
    sent, other = reports("pi-1", 3), reports("pi-2", 2)
    stored = store.store_posts(db, [("reports", "pi-1", sent), ("reports", "pi-2", other)])
    assert [s.stored for s in stored] == [[r["id"] for r in sent], [r["id"] for r in other]]
    changed = {**sent[0], "frames": sent[0]["frames"] + 1}
    again = store.store_posts(db, [("reports", "pi-1", [sent[1], changed])])[0]
    assert (again.stored, again.duplicates, again.conflicts) == ([], [sent[1]["id"]], [sent[0]["id"]])
    listed = {d["device"]: d for d in store.devices(db)}
    assert (listed["pi-1"]["reports"], listed["pi-1"]["conflicts"], listed["pi-2"]["reports"]) == (3, 1, 2)
    assert [orjson.loads(body)["id"] for body in store.device_reports(db, "pi-1", limit=2)] == [
        r["id"] for r in sent[1:]
    ]
    assert [orjson.loads(body) for body in store.device_reports(db, "pi-1", since=1.8e9 + 1.6)] == sent[2:]
    assert [d["device"] for d in store.devices(db, "pi-2")] == ["pi-2"]
    assert [device for device, _, _ in store.all_reports(db)] == ["pi-1"] * 3 + ["pi-2"] * 2


def test_an_export_reads_a_batch_at_a_time_and_may_stop_early(db, monkeypatch):
    """A CSV export of a million reports must not hold them all in memory: on PostgreSQL the rows come from a
    cursor on the server, STREAM_ROWS at a time (psycopg's own cursor fetches the whole result first)."""
    monkeypatch.setattr(database, "STREAM_ROWS", 2)
    sent = reports("pi-1", 5)
    store.store_posts(db, [("reports", "pi-1", sent)])
    rows = store.all_reports(db)
    assert next(rows)[2] == sent[0]
    if isinstance(db, database.Postgres):
        assert db.execute("SELECT name FROM pg_cursors").fetchall() == [("stream",)]
    rows.close()  # the client went away: the read ends, the connection serves on
    assert [r for _, _, r in store.all_reports(db)] == sent
    assert [r for _, _, r in store.all_reports(db, "pi-2")] == []


def test_tokens_are_made_found_and_revoked(db):
    secret = store.create_token(db, "ops", "reader")
    assert store.who(db, secret) == ("ops", "reader")
    with pytest.raises(EdgeError, match="already"):
        store.create_token(db, "ops")
    store.revoke_token(db, "ops")
    assert store.who(db, secret) is None


def test_frames_are_kept_labelled_and_dropped_oldest_first(db, digits):
    scan = sorted((digits / "2").iterdir())[0]
    jpeg = cv2.imencode(".jpg", cv2.imread(str(scan)))[1].tobytes()  # a real scan, as the JPEG a device sends
    frames = [record(jpeg, "pi-1") for _ in range(3)]
    quota = store.FrameQuota(device=2 * len(jpeg), total=10 * len(jpeg), reserve=0)
    for frame in frames:
        assert store.store_posts(db, [("frames", "pi-1", [frame])], quota)[0].stored == [frame["id"]]
    assert [f["id"] for f in store.device_frames(db, "pi-1", "all")] == [f["id"] for f in frames[1:]]
    label = [{"id": frames[1]["id"], "label": "2", "discard": False}]
    label += [{"id": frames[2]["id"], "label": None, "discard": True}]
    assert store.store_posts(db, [("labels", None, label)])[0].stored == [frames[1]["id"], frames[2]["id"]]
    assert store.frame_counts(db, "pi-1") == {"new": 0, "labelled": 1, "discarded": 1, "dropped": 1, "refused": 0}
    assert [f["discarded"] for f in store.device_frames(db, "pi-1", "discarded")] == [True]


def test_model_files_are_read_in_ranges_and_versions_numbered_once(db, tmp_path):
    bundle = carried_bundle(tmp_path / "b", b"TFL3" + bytes(range(256)) * 40)
    signed = sign_bundle(bundle, create_keys(tmp_path / "keys")[0])
    for file, facts in signed["release"]["files"].items():
        assert releases.store_file(db, facts["sha256"], (bundle / file).read_bytes())
    model = (bundle / "model.tflite").read_bytes()
    rowid, size = releases.file_blob(db, hashlib.sha256(model).hexdigest())
    assert size == len(model) and releases.read_range(db, rowid, 100, 612) == model[100:612]
    assert releases.push(db, "cams", signed, "ci") == {"name": "cams", "version": 1, "new": True}
    assert releases.push(db, "cams", signed, "ci") == {"name": "cams", "version": 1, "new": False}
    assert releases.withdraw(db, "cams", 1) and [v["withdrawn"] is not None for v in releases.versions(db)] == [True]


def test_a_rollout_starts_moves_on_and_is_aborted(db, tmp_path):
    bundle = carried_bundle(tmp_path / "b")
    signed = sign_bundle(bundle, create_keys(tmp_path / "keys")[0])
    for file, facts in signed["release"]["files"].items():
        releases.store_file(db, facts["sha256"], (bundle / file).read_bytes())
    releases.push(db, "cams", signed, "ci")
    for device in ("pi-1", "pi-2", "pi-3"):
        store.store_posts(db, [("reports", device, reports(device, 2, start=time.time() - 100))])
    started = rollouts_store.start(db, "cams", 1, None, 1, 2, 0.5, Guard(), "ci")
    assert (started["state"], started["waves"]) == ("canary", [["pi-2"], ["pi-1"]]) and started["canaries"] == ["pi-3"]
    rollouts_store.advance(db, now=time.time() + 1)  # the canary reported nothing under it: too few frames
    failed = rollouts_store.rollouts(db, "cams")[0]
    assert failed["state"] == "failed" and "fewer than the 100 needed" in failed["reason"]
    assert [h["event"].split(":")[0] for h in failed["history"]] == ["started by ci", "failed"]
    assert rollouts_store.assignment(db, "pi-3") == {"model": "cams", "version": None}


def test_an_unreachable_or_newer_database_is_one_line_without_the_password(cluster):
    url = cluster.url()
    unreachable = url.replace(f":{cluster.port}/", ":1/").replace("edge@", "edge:s3cret@")
    with pytest.raises(EdgeError) as refused:
        store.open_db(unreachable)
    assert "cannot connect" in str(refused.value) and "s3cret" not in str(refused.value)
    assert redacted(unreachable) in str(refused.value) and "\n" not in str(refused.value)
    db = store.open_db(url)
    db.execute("UPDATE edge_schema SET version = 99")
    db.close()
    with pytest.raises(EdgeError, match="store version 99, this edge keeps 7"):
        store.open_db(url)


def test_edge_serve_on_postgres_takes_reports_and_serves_them_back(cluster):
    url = cluster.url()
    secret, reader = token(url, "pi-1"), token(url, "ops", "--reader")
    sent = reports("pi-1", 3)
    with Server(url, None, "--workers", "2").start() as server:
        status, answer = server.post(sent, secret)
        assert status == 200 and answer["ids"] == [r["id"] for r in sent], answer
        assert server.post(sent[:1], secret)[1]["duplicates"] == 1
        status, listed = server.get("/api/v1/devices", reader)
        assert status == 200 and [(d["device"], d["reports"]) for d in listed["devices"]] == [("pi-1", 3)]
        status, read = server.get("/api/v1/devices/pi-1/reports", reader)
        assert status == 200 and read["reports"] == sent
        assert server.get("/healthz")[0] == 200
    r = edge_cli("token", "list", "--db", url)
    assert r.returncode == 0 and "pi-1" in r.stdout and "ops" in r.stdout, r.stderr


def test_a_password_in_the_url_is_refused_before_it_is_used():
    r = edge_cli("serve", "--db", "postgresql://edge:s3cret@127.0.0.1:1/edge")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "s3cret" not in r.stderr, r.stderr
    assert "give the password in PGPASSWORD or ~/.pgpass, not in the URL" in r.stderr


def test_two_hosts_on_one_database_count_every_report_of_a_device_once(cluster):
    """Two `edge serve` on one PostgreSQL, each taking batches of one device's reports at once: the device's
    row counts each report once (without a lock per device, each host folds into the row it read: 80-85 of
    120); a token revoked through the database is refused by both at once."""
    url = cluster.url()
    secret = token(url, "pi-1")
    batches = [reports("pi-1", 5, start=1.8e9 + 100 * i) for i in range(24)]
    with Server(url).start() as one, Server(url).start() as two:

        def send(server, mine):
            for batch in mine:
                status, answer = server.post(batch, secret)
                assert status == 200, answer

        threads = [threading.Thread(target=send, args=(s, batches[i::2])) for i, s in enumerate((one, two))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        listed = two.get("/api/v1/devices", token(url, "ops", "--reader"))[1]["devices"]
        assert edge_cli("token", "revoke", "pi-1", "--db", url).returncode == 0
        assert [server.post(batches[0], secret)[0] for server in (one, two)] == [401, 401]  # at once, on both
    assert [(d["device"], d["reports"]) for d in listed] == [("pi-1", 120)]


def answered(request, within=30.0):
    """The answer of `request` once it is a 200: each worker reconnects on its own, at the first request it
    takes once its last try is RECONNECT_FIRST to RECONNECT_MOST seconds past."""
    deadline = time.monotonic() + within
    while (answer := request())[0] != 200:
        assert time.monotonic() < deadline, f"no 200 within {within} s: {answer}"
        time.sleep(0.2)
    return answer[1]


def test_a_host_that_loses_its_database_answers_503_and_recovers_by_itself():
    """PostgreSQL restarted under a serving host (its connections cut): every request is a 503 that says so
    (the token lookup's too, which runs before any endpoint), the host stays up, and once the database is
    back it takes and serves reports again without a restart; nothing it acknowledged is lost."""
    cluster = Cluster()
    try:
        url = cluster.url()
        secret, reader = token(url, "pi-1"), token(url, "ops", "--reader")
        before, during = reports("pi-1", 3), reports("pi-1", 2, start=1.9e9)
        with Server(url, None, "--workers", "2").start() as server:
            status, answer = server.post(before, secret)
            assert status == 200, answer
            cluster.down()
            for _ in range(4):  # both workers, each request on a connection found cut or still away
                status, answer = server.post(during, secret)
                assert status == 503 and "retry later" in answer["error"], answer
                status, answer = server.get("/api/v1/devices", reader)
                assert status == 503 and "database cannot answer now" in answer["error"], answer
                assert server.get("/healthz")[0] == 503
            assert server.process.poll() is None
            cluster.up()
            assert answered(lambda: server.post(during, secret))["ids"] == [r["id"] for r in during]
            assert answered(lambda: server.get("/api/v1/devices/pi-1/reports", reader))["reports"] == before + during
    finally:
        cluster.stop()


NUL_URLS = [
    ("GET", "/api/v1/devices/a%00b/reports"),
    ("GET", "/api/v1/devices/a%00b/field"),
    ("GET", "/api/v1/devices/a%00b/frames"),
    ("GET", "/api/v1/frames/x%00.jpg"),
    ("GET", "/api/v1/models/m%00/1"),
    ("GET", "/api/v1/rollouts?model=m%00"),
    ("GET", "/api/v1/devices?name=a%00"),
    ("POST", "/api/v1/frames/x%00/label"),
    ("POST", "/api/v1/rollouts/m%00/abort"),
]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_nul_in_a_url_is_refused_alike_on_both_backends(backend, request, tmp_path):
    """PostgreSQL refuses text holding a NUL (a 500 from every endpoint that looked one up); SQLite found
    nothing. Both now answer 400 before any endpoint."""
    target = tmp_path / "edge.db" if backend == "sqlite" else request.getfixturevalue("cluster").url()
    reader, publisher = token(target, "ops", "--reader"), token(target, "pub", "--publisher")
    with Server(target).start() as server:
        for method, path in NUL_URLS:
            status, answer = server.request(method, path, {} if method == "POST" else None, reader)
            assert (status, answer["error"]) == (400, REFUSAL), (path, answer)
        status, answer = server.request("POST", "/api/v1/rollouts/m%00/abort", {}, publisher)
        assert status == 400, answer
        assert server.get("/api/v1/devices", reader)[0] == 200
