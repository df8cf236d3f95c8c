"""`edge serve` as a real process on loopback: reports stored once and shown, tokens enforced, and
bad, huge, malformed and hostile bodies refused with the right code while the server keeps serving."""

import copy
import csv
import hashlib
import http.client
import io
import json
import os
import shutil
import signal
import socket
import sqlite3
import struct
import threading
import time
import uuid

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.report import make_report, matrix
from edge.reporter import Reporter, ReportOptions
from edge.runner import RunOptions, run
from edge.server import store
from tests.cli import edge_cli
from tests.hostile import HOSTILE, NUL_TEXT, hostile_json
from tests.reports import window_summary
from tests.server import Server, bytes_written, running, token


@pytest.fixture(scope="module")
def summary(e2e, digits):
    """A real `edge run --json` summary: the digits bundle on the scans of one digit, with its truth."""
    return run(e2e.bundle, digits / "2", RunOptions(truth="2")).to_json()


def reports(summary, device, n, run_id=None):
    sha = hashlib.sha256(open(summary["model"], "rb").read()).hexdigest()
    run_id = run_id or uuid.uuid4().hex
    return [make_report(summary, device, run_id, seq, sha, 1.8e9 + seq, 1.8e9 + seq + 1) for seq in range(n)]


@pytest.fixture(scope="module")
def host(new_db):
    db = new_db()
    tokens = {name: token(db, name) for name in ("pi-kitchen", "pi-garage")}
    tokens["alice"] = token(db, "alice", "--reader")
    with Server(db, None, "--max-body", "200000").start() as server:
        yield server, tokens


def test_reports_are_stored_once_and_shown(host, summary):
    server, tokens = host
    batch = reports(summary, "pi-kitchen", 3)
    ids = [r["id"] for r in batch]
    assert server.post(batch, tokens["pi-kitchen"]) == (
        200,
        {"stored": 3, "duplicates": 0, "conflicts": [], "ids": ids},
    )
    assert server.post(batch, tokens["pi-kitchen"]) == (
        200,
        {"stored": 0, "duplicates": 3, "conflicts": [], "ids": ids},
    )  # a retry
    status, body = server.get("/api/v1/devices")
    device = next(d for d in body["devices"] if d["device"] == "pi-kitchen")
    assert status == 200 and device["reports"] == 3 and device["latest"]["seq"] == 2 and device["conflicts"] == 0
    assert device["field"]["n"] == 3 * summary["n"]
    assert device["field"]["accuracy"] == pytest.approx(summary["accuracy"])
    status, body = server.get("/api/v1/devices/pi-kitchen/field")
    assert status == 200 and body["field"]["reports"] == 3 and body["field"]["classes"] == len(summary["labels"])
    seen = body["field"]["labels"]  # the classes the run saw: here truth "2" and whatever it was taken for
    rows = [summary["labels"].index(label) for label in seen]
    dense = np.array(summary["confusion_matrix"])[np.ix_(rows, rows)]
    assert body["field"]["confusion_matrix"] == (3 * dense).tolist() and dense.sum() == summary["n"]
    assert body["field"]["accuracy"] == pytest.approx(summary["accuracy"])
    status, body = server.get("/api/v1/devices/pi-kitchen/reports?limit=2")
    assert status == 200 and [r["seq"] for r in body["reports"]] == [1, 2]
    assert (matrix(body["reports"][0]) == summary["confusion_matrix"]).all()
    status, text = server.get("/api/v1/export.csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    mine = [r for r in rows if r["device"] == "pi-kitchen"]
    assert status == 200 and len(mine) == 3 and float(mine[0]["accuracy"]) == pytest.approx(summary["accuracy"])


def test_tokens_are_stored_hashed(host, backend):
    server, tokens = host
    rows = store.open_reader(server.db).execute("SELECT * FROM tokens").fetchall()
    assert {row[0] for row in rows} == {"pi-kitchen", "pi-garage", "alice"}
    assert not any(t in str(cell) for t in tokens.values() for row in rows for cell in row)
    if backend == "sqlite":  # nor in the file's pages, nor its log's
        raw = server.db.read_bytes() + (
            server.db.with_name("edge.db-wal").read_bytes() if server.db.with_name("edge.db-wal").exists() else b""
        )
        assert not any(t.encode() in raw for t in tokens.values())


@pytest.mark.parametrize(
    "who,device,status,message",
    [
        (None, "pi-kitchen", 401, "missing token"),
        ("not-a-token", "pi-kitchen", 401, "unknown or revoked"),
        ("pi-garage", "pi-kitchen", 403, "but the token is for 'pi-garage'"),
        ("alice", "alice", 403, "reader token"),
    ],
)
def test_writes_need_the_device_s_own_token(host, summary, who, device, status, message):
    server, tokens = host
    code, body = server.post(reports(summary, device, 1), tokens.get(who, who))
    assert code == status and message in body["error"]


def test_revoked_token_is_refused_at_once(host, summary, tmp_path):
    server, tokens = host
    fresh = token(server.db, "pi-attic")
    assert server.post(reports(summary, "pi-attic", 1), fresh)[0] == 200
    assert edge_cli("token", "revoke", "pi-attic", "--db", server.db).returncode == 0
    assert server.post(reports(summary, "pi-attic", 1), fresh)[0] == 401


def test_bad_bodies_get_the_right_code_and_the_server_keeps_serving(host, summary):
    server, tokens = host
    t = tokens["pi-garage"]
    good = reports(summary, "pi-garage", 1)[0]
    cases = [
        (b"{not json", 400),
        (b'{"reports": [NaN]}', 400),
        (b"[" * 100_001 + b"]" * 100_001, 413),
        (b"[" * 50_000 + b"]" * 50_000, 422),  # nested deep: parsed, and not {"reports": [...]}
        (b'{"reports": [' + b"[" * 50_000 + b"]" * 50_000 + b"]}", 422),
        (b'"just a string"', 422),
        (b'{"reports": []}', 422),
        (json.dumps({"reports": [{**good, "accuracy": 2.0}]}).encode(), 422),
        (json.dumps({"reports": [{**good, "confusion": [0, 0, 1]}]}).encode(), 422),
        (json.dumps({"reports": [{**good, "confusion": [99, 0, good["evaluated"]]}]}).encode(), 422),
        (json.dumps({"reports": [{**good, "format_version": 1}]}).encode(), 422),
        (json.dumps({"reports": [{k: v for k, v in good.items() if k != "window"}]}).encode(), 422),
        (json.dumps({"reports": [good] * 501}).encode(), 413),  # 501 real reports: over 200 kB
        (b"\xff\xfe\x00garbage", 400),
    ]
    for body, status in cases:
        code, answer = server.request("POST", "/api/v1/reports", body, t)
        assert code == status, (body[:60], code, answer)
        assert isinstance(answer, dict) and answer["error"]
    assert server.request("GET", "/api/v1/devices/nobody/reports")[0] == 404
    assert server.request("GET", "/api/v1/devices/pi-garage/reports?limit=x")[0] == 400
    assert server.request("DELETE", "/api/v1/reports", None, t)[0] == 405
    assert server.alive()


def test_text_holding_a_nul_comes_back_out_of_every_read(host):
    """A NUL in a report's free text and class names (JSON's \\u0000): taken, and served back as it came by every
    read, on PostgreSQL too, whose text type cannot hold one (the report is kept as JSON, which escapes it)."""
    server, _ = host
    secret = token(server.db, "pi-nul")
    summary = window_summary(["cat", NUL_TEXT], [(0, 0), (1, 1), (1, 0)])
    report = make_report(summary, "pi-nul", uuid.uuid4().hex, 0, "0" * 64, 1.8e9, 1.8e9 + 1)
    report = {**json.loads(json.dumps(report, default=lambda a: a.tolist())), "source": NUL_TEXT, "notes": NUL_TEXT}
    assert server.post([report], secret)[0] == 200
    _, body = server.get("/api/v1/devices/pi-nul/reports?limit=10000")
    assert report in body["reports"]
    status, body = server.get("/api/v1/devices/pi-nul/field")
    assert status == 200 and NUL_TEXT in body["field"]["labels"], body
    assert server.get("/api/v1/devices")[0] == server.get("/api/v1/export.csv")[0] == 200


def test_a_body_over_the_limit_is_cut_off_while_it_streams(host):
    """No Content-Length (chunked): the server counts as it reads and answers 413 past the limit."""
    server, tokens = host
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.putrequest("POST", "/api/v1/reports")
    conn.putheader("Authorization", f"Bearer {tokens['pi-garage']}")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    try:
        for _ in range(40):
            chunk = b"x" * 10_000
            conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        conn.send(b"0\r\n\r\n")
    except OSError:
        pass  # the server may close the connection once it has answered
    assert conn.getresponse().status == 413
    assert server.alive()


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.one_of(
        st.binary(max_size=2000),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
            lambda children: (
                st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
            ),
            max_leaves=30,
        ).map(lambda v: json.dumps({"reports": [v]}).encode()),
    )
)
def test_fuzzed_bodies_are_refused_never_a_500(host, body):
    server, tokens = host
    code, answer = server.request("POST", "/api/v1/reports", body, tokens["pi-garage"])
    assert code in (400, 413, 422), (body[:80], code, answer)


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fuzzed_fields_of_a_real_report_are_refused_never_a_500(host, summary, data):
    server, tokens = host
    report = reports(summary, "pi-garage", 1)[0]
    key = data.draw(st.sampled_from(sorted(report)))
    report[key] = data.draw(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats()
        | st.text(max_size=70)
        | st.lists(st.integers(), max_size=3)
        | st.dictionaries(st.text(max_size=5), st.integers())
    )
    code, answer = server.request(
        "POST", "/api/v1/reports", json.dumps({"reports": [report]}).encode(), tokens["pi-garage"]
    )
    assert code in (200, 400, 403, 422), (key, report[key], code, answer)
    if code == 200:  # what was taken is stored as sent
        _, body = server.get("/api/v1/devices/pi-garage/reports?limit=10000")
        assert report in body["reports"]


def test_protected_reads_need_a_token_and_a_device_reads_only_its_own(new_db, summary):
    db = new_db()
    reader, kitchen, garage = token(db, "alice", "--reader"), token(db, "pi-kitchen"), token(db, "pi-garage")
    server = Server(db, None, "--protect-reads").start()
    try:
        assert server.post(reports(summary, "pi-kitchen", 1), kitchen)[0] == 200
        assert server.post(reports(summary, "pi-garage", 2), garage)[0] == 200
        assert server.get("/api/v1/devices")[0] == 401
        assert server.get("/api/v1/export.csv")[0] == 401
        status, body = server.get("/api/v1/devices", token=reader)
        assert status == 200 and [d["device"] for d in body["devices"]] == ["pi-garage", "pi-kitchen"]
        status, body = server.get("/api/v1/devices", token=kitchen)
        assert status == 200 and [d["device"] for d in body["devices"]] == ["pi-kitchen"]
        for path in ("reports", "field"):
            assert server.get(f"/api/v1/devices/pi-garage/{path}", token=kitchen)[0] == 403
            assert server.get(f"/api/v1/devices/pi-kitchen/{path}", token=kitchen)[0] == 200
        status, text = server.get("/api/v1/export.csv", token=kitchen)
        assert status == 200 and [r["device"] for r in csv.DictReader(io.StringIO(text))] == ["pi-kitchen"]
        assert len(list(csv.DictReader(io.StringIO(server.get("/api/v1/export.csv", token=reader)[1])))) == 3
        assert server.get("/healthz")[0] == 200 and server.get("/")[0] == 200  # the page itself holds no data
    finally:
        server.stop()


@pytest.mark.parametrize(
    "args,protected,warning",
    [
        ((), True, None),  # beyond loopback, reads are protected unless asked otherwise
        (("--open-reads",), False, "--open-reads: anyone who can reach this port reads every device's reports"),
    ],
)
def test_reads_beyond_loopback_are_protected_unless_opened(tmp_path, args, protected, warning):
    server = Server(tmp_path / "edge.db", None, "--host", "0.0.0.0", *args).start()
    try:
        assert server.get("/api/v1/devices")[0] == (401 if protected else 200)
    finally:
        server.stop()
    err = server.process.stderr.read().decode()
    assert ("reads need a token" in err) == protected and (warning is None or warning in err)


def test_export_csv_neutralises_formulas(host, summary):
    """Ids may start with '-': such a cell would run as a formula in a spreadsheet (-2+3 is one)."""
    server, tokens = host
    report = reports(summary, "pi-garage", 1)[0]
    report["id"], report["run_id"] = "-2-3-4-5-6", "-A1-A2-B3"
    assert server.post([report], tokens["pi-garage"])[0] == 200
    _, text = server.get("/api/v1/export.csv")
    rows = list(csv.reader(io.StringIO(text)))
    assert ["'-2-3-4-5-6", "'-A1-A2-B3"] in [row[2:4] for row in rows]
    assert not [cell for row in rows for cell in row if cell.startswith(("=", "+", "-", "@", "\t", "\r"))]


def test_an_id_sent_again_with_other_content_is_a_conflict_and_the_first_is_kept(new_db, summary):
    db = new_db()
    kitchen, garage = token(db, "pi-kitchen"), token(db, "pi-garage")
    server = Server(db).start()
    try:
        first = reports(summary, "pi-kitchen", 1)[0]
        assert server.post([first], kitchen)[0] == 200
        changed = {**first, "frames": first["frames"] + 1}
        assert server.post([changed], kitchen) == (
            200,
            {"stored": 0, "duplicates": 0, "conflicts": [first["id"]], "ids": [first["id"]]},
        )
        stolen = {**first, "device_id": "pi-garage"}  # another device's id: not a retry either
        assert server.post([stolen], garage)[1]["conflicts"] == [first["id"]]
        assert server.get("/api/v1/devices/pi-kitchen/reports")[1]["reports"] == [first]
        assert {d["device"]: d["conflicts"] for d in server.get("/api/v1/devices")[1]["devices"]} == {"pi-kitchen": 1}
        assert server.get("/api/v1/devices/pi-garage/reports")[0] == 404
    finally:
        server.stop()
    assert f"'pi-kitchen' sent report {first['id']} again with other content" in server.process.stderr.read().decode()


def test_a_retry_of_a_report_stored_by_another_json_writer_is_a_duplicate(new_db, summary):
    """The same report, held as another version of the host wrote its JSON (spaces, escaped non-ASCII):
    a retry, not a conflict."""
    db = new_db()
    kitchen = token(db, "pi-kitchen")
    report = {**reports(summary, "pi-kitchen", 1)[0], "source": "caméra 0"}
    conn = store.open_db(db)
    conn.execute(
        "INSERT INTO reports (id, device, run, received, window_start, window_end, evaluated, body) "
        "VALUES (?, ?, ?, 0, 0, 1, ?, ?)",
        (report["id"], "pi-kitchen", report["run_id"], report["evaluated"], json.dumps(report)),
    )
    conn.close()
    server = Server(db).start()
    try:
        assert server.post([report], kitchen)[1] == {
            "stored": 0,
            "duplicates": 1,
            "conflicts": [],
            "ids": [report["id"]],
        }
    finally:
        server.stop()


def test_workers_share_one_store(new_db, backend, summary):
    """One device posting over many connections at once, which the workers take as they come: its counts,
    latest report and field evaluation are what one writer storing every report would have made."""
    db = new_db()
    kitchen = token(db, "pi-kitchen")
    run_id, sha = uuid.uuid4().hex, hashlib.sha256(open(summary["model"], "rb").read()).hexdigest()
    batches = [
        [
            make_report(summary, "pi-kitchen", run_id, seq, sha, 1.8e9 + seq, 1.8e9 + seq + 1)
            for seq in range(first, first + 5)
        ]
        for first in range(0, 600, 5)
    ]
    server = Server(db, None, "--workers", "3").start()
    workers = server.workers()
    before = {pid: bytes_written(pid) for pid in workers}

    def device(mine):
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        for batch in mine:
            conn.request(
                "POST",
                "/api/v1/reports",
                json.dumps({"reports": batch}),
                {"Authorization": f"Bearer {kitchen}", "Content-Type": "application/json"},
            )
            response = conn.getresponse()
            assert response.status == 200 and json.loads(response.read())["stored"] == 5

    threads = [threading.Thread(target=device, args=(batches[i::12],)) for i in range(12)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # one connection's 10 POSTs: ~400 kB
        busy = [pid for pid in workers if bytes_written(pid) - before[pid] >= 100_000]
        status, body = server.get("/api/v1/devices")
        _, field = server.get("/api/v1/devices/pi-kitchen/field")
        _, latest = server.get("/api/v1/devices/pi-kitchen/reports?limit=1")
    finally:
        server.stop()
    # the connections were spread over the workers: seen in their writes to SQLite's file (PostgreSQL's go to
    # a socket, which write counts do not count)
    assert len(workers) == 3 and (len(busy) >= 2 or backend == "postgres"), busy
    device = body["devices"][0]
    assert status == 200 and device["reports"] == 600 and device["latest"]["seq"] == 599 == latest["reports"][0]["seq"]
    assert device["field"] == {
        "run_id": run_id,
        "reports": 600,
        "n": 600 * summary["n"],
        "accuracy": pytest.approx(summary["accuracy"]),
    }
    assert field["field"]["reports"] == 600 and np.sum(field["field"]["confusion_matrix"]) == 600 * summary["n"]


def test_a_dashboard_s_refresh_gets_what_came_since_across_a_restart(new_db, summary):
    """The page reads a device's latest reports once, then those that ended after the newest it holds."""
    db = new_db()
    kitchen = token(db, "pi-kitchen")
    batch = reports(summary, "pi-kitchen", 40)
    server = Server(db).start()
    try:
        assert server.post(batch[:30], kitchen)[0] == 200
        server.stop()
        server = Server(db).start()
        assert server.post(batch[30:], kitchen)[0] == 200
        for since in (
            None,
            batch[9]["window"]["end"],
            batch[29]["window"]["end"],
            batch[35]["window"]["end"],
            batch[39]["window"]["end"],
        ):
            for limit in (3, 500):
                query = f"?limit={limit}" + (f"&since={since!r}" if since is not None else "")
                status, body = server.get(f"/api/v1/devices/pi-kitchen/reports{query}")
                newer = [r for r in batch if since is None or r["window"]["end"] > since]
                assert status == 200 and body["reports"] == newer[-limit:], query
    finally:
        server.stop()


def log_salt(db) -> int:
    """The first salt of the write-ahead log's header: one more each time the log starts over, whichever
    connection starts it (the header's checkpoint count is the count of the connection that wrote it)."""
    return struct.unpack(">I", open(f"{db}-wal", "rb").read(20)[16:20])[0]


def test_devices_posting_at_once_are_each_answered_for_their_own_and_the_log_starts_over(tmp_path, summary):
    """Devices posting at the same time, some batches sent twice: their POSTs are stored together (one
    transaction for the POSTs of a turn of the event loop), yet each answer names exactly its own ids, and
    the write-ahead log is copied into the database and started over while writes never stop (a log never
    started over would hold every report stored)."""
    db = tmp_path / "edge.db"
    names = [f"pi-{i}" for i in range(8)]
    secrets = {name: token(db, name) for name in names}
    server = Server(db).start()
    answers, stop = [], threading.Event()

    def device(name):
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        headers = {"Authorization": f"Bearer {secrets[name]}", "Content-Type": "application/json"}
        while not stop.is_set():
            batch, pair = reports(summary, name, 10), []
            for _ in range(2):  # the second time: a retry after a lost answer
                conn.request("POST", "/api/v1/reports", json.dumps({"reports": batch}), headers)
                response = conn.getresponse()
                pair.append(([r["id"] for r in batch], response.status, json.loads(response.read())))
            answers.append(pair)

    threads = [threading.Thread(target=device, args=(name,)) for name in names]
    try:
        for t in threads:
            t.start()
        time.sleep(0.5)
        first = log_salt(db)
        time.sleep(4)  # of writes without a pause
        restarts = (log_salt(db) - first) % 2**32
        stop.set()
        for t in threads:
            t.join()
    finally:
        server.stop()
    first, again = [pair[0] for pair in answers], [pair[1] for pair in answers]
    assert all(
        status == 200 and answer["ids"] == ids and answer["stored"] == len(ids) for ids, status, answer in first
    ), first[:3]
    assert all(
        status == 200 and answer["ids"] == ids and answer["duplicates"] == len(ids) for ids, status, answer in again
    ), again[:3]
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM reports").fetchone()[0] == 10 * len(first) >= 1000
    assert restarts >= 2


def test_the_log_starts_over_whichever_worker_writes(tmp_path, summary):
    """One device on one connection, which one of 4 workers takes (3 in 4 times not the one that
    checkpoints): the log is still copied into the database and started over, and stays small."""
    db = tmp_path / "edge.db"
    kitchen = token(db, "pi-kitchen")
    server = Server(db, None, "--workers", "4").start()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    started, posted, first = time.monotonic(), 0, None
    try:
        while time.monotonic() - started < 3.5:
            conn.request(
                "POST",
                "/api/v1/reports",
                json.dumps({"reports": reports(summary, "pi-kitchen", 10)}),
                {"Authorization": f"Bearer {kitchen}", "Content-Type": "application/json"},
            )
            response = conn.getresponse()
            assert response.status == 200 and json.loads(response.read())["stored"] == 10
            posted += 10
            first = log_salt(db) if first is None else first
        restarts = (log_salt(db) - first) % 2**32
    finally:
        server.stop()
    assert restarts >= 2 and posted >= 300, (restarts, posted)


def test_counts_are_bounded_and_sums_do_not_overflow(host, summary):
    server, tokens = host
    run_id = uuid.uuid4().hex
    batch = reports(summary, "pi-counts", 3, run_id)
    big = 10**9  # the most one report may count; three of them overflow 32 bits, and 2^53 each would 64
    for r in batch:
        r["frames"] = r["evaluated"] = big
        r["confusion"] = [2, 2, big]
    secret = token(server.db, "pi-counts")
    assert server.post(batch, secret)[0] == 200
    field = next(d for d in server.get("/api/v1/devices")[1]["devices"] if d["device"] == "pi-counts")["field"]
    assert field["n"] == 3 * big and field["accuracy"] == 1.0
    assert server.get("/api/v1/devices/pi-counts/field")[1]["field"]["confusion_matrix"] == [[3 * big]]
    over = {**batch[0], "id": uuid.uuid4().hex, "frames": big + 1}
    code, body = server.post([over], secret)
    assert code == 422 and "'frames' must be a count up to 1000000000" in body["error"]


def test_a_1000_class_report_fits_and_is_shown(host):
    """A 10 s window at 30 fps of an ImageNet-sized model: compact, it is far under the default body limit."""
    server, tokens = host
    labels = [f"n{c:08d} a class name of imagenet size" for c in range(1000)]
    rng = np.random.default_rng(0)
    summary = window_summary(labels, [(frame % 40, int(rng.integers(1000))) for frame in range(300)], (1, 5))
    report = make_report(summary, "pi-imagenet", uuid.uuid4().hex, 0, "0" * 64, 1.8e9, 1.8e9 + 10)
    size = len(json.dumps({"reports": [report]}))
    assert size < 100_000 < len(json.dumps(summary)) / 10, size  # the dense window is over 2 MB
    secret = token(server.db, "pi-imagenet")
    assert server.post([report], secret)[0] == 200
    field = server.get("/api/v1/devices/pi-imagenet/field")[1]["field"]
    assert field["classes"] == 1000 and field["n"] == 300 and field["accuracy"] == pytest.approx(summary["accuracy"])
    assert field["macro"] == pytest.approx(summary["macro"])


def test_a_full_disk_answers_503_and_devices_keep_their_reports(small_disk, summary, tmp_path):
    db = small_disk / "edge.db"
    secret = token(db, "pi-kitchen")
    server = Server(db).start()
    filler = small_disk / "filler"
    run_id = uuid.uuid4().hex
    try:
        code, body = server.post(reports(summary, "pi-kitchen", 10, run_id), secret)
        assert code == 200
        taken = body["ids"]
        filler.write_bytes(b"\0" * (shutil.disk_usage(small_disk).free - 20_000))
        code, body = server.post(reports(summary, "pi-kitchen", 40, run_id), secret)  # more than is free
        assert code == 503 and body["error"] == "the host's disk is full: keep the reports and retry later"
        assert server.get("/healthz") == (
            503,
            {
                "status": "disk full",
                "error": "the disk of edge.db is full: devices keep their reports until space is freed",
            },
        )
        assert server.get("/api/v1/devices")[0] == 200  # reads go on
        options = dict(url=server.url, token=secret, device_id="pi-kitchen", outbox=tmp_path / "outbox.db", flush=1.0)
        reporter = Reporter(ReportOptions(**options))
        late = reports(summary, "pi-kitchen", 5, run_id)
        for report in late:
            reporter.submit(report)
        tally = reporter.close()
        assert tally["pending"] == 5 and tally["sent"] == 0 and "disk is full" in tally["last_error"]
        filler.unlink()
        assert server.get("/healthz") == (200, {"status": "ok"})
        assert Reporter(ReportOptions(**options)).close()["pending"] == 0
        held = server.get("/api/v1/devices/pi-kitchen/reports?limit=10000")[1]["reports"]
        assert sorted(r["id"] for r in held) == sorted(taken + [r["id"] for r in late])  # nothing lost or doubled
    finally:
        server.stop()
    errors = server.process.stderr.read().decode()
    assert "is full: reports and frames are refused (503) until space is freed" in errors and "Traceback" not in errors


def gone(pids, seconds=10.0) -> bool:
    """Whether every process of `pids` ended (or is a zombie, its sockets closed) within `seconds`."""
    deadline = time.monotonic() + seconds
    while any(map(running, pids)):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.parametrize("how", ["stop", "main process killed", "worker killed"])
def test_workers_end_with_the_main_process(tmp_path, how):
    """SIGTERM: every worker stops, exit 0. The main process killed (no handler runs): its workers stop on
    their own and free the port. A worker killed: the others stop and `edge serve` exits 1, for systemd to
    start it again."""
    server = Server(tmp_path / "edge.db", None, "--workers", "2").start()
    workers = server.workers()
    assert len(workers) == 2
    if how == "stop":
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(10) == 0
    elif how == "main process killed":
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(10)
    else:
        os.kill(workers[0], signal.SIGKILL)
        assert server.process.wait(10) == 1
        assert "a worker ended (signal 9): stopping the others" in server.process.stderr.read().decode()
    assert gone(workers)
    with socket.socket() as again:  # no one listens on the port (its closed connections may wait out TIME_WAIT)
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", server.port))


@pytest.mark.parametrize(
    "args,message",
    [
        (("--port", "99999"), "--port 99999: give a port from 1 to 65535"),
        (("--port", "0"), "--port 0: give a port from 1 to 65535"),
        (("--max-body", "-5"), "--max-body -5: give at least 16384 bytes"),
        (("--host", "no-such-host.invalid"), "--host no-such-host.invalid: not an address of this machine"),
        (("--workers", "0"), "--workers 0: give 1 to 64 processes"),
        (("--frame-quota", "10", "--frame-quota-all", "5"), "--frame-quota 10, --frame-quota-all 5, --frame-reserve"),
        (("--header-timeout", "0"), "--header-timeout 0.0: give 0.1 to 3600 seconds"),
        (("--max-connections", "3"), "--max-connections 3: give 16 to 1000000"),
        ("taken", "cannot listen on 127.0.0.1:"),
        ("served", "cannot listen on 127.0.0.1:"),  # by another edge serve's workers
    ],
)
def test_serve_option_errors(tmp_path, args, message):
    served = Server(tmp_path / "other.db", None, "--workers", "2").start() if args == "served" else None
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        if args in ("taken", "served"):
            args = ("--port", served.port if served else taken.getsockname()[1])
        try:
            r = edge_cli("serve", "--db", tmp_path / "edge.db", *args)
        finally:
            if served:
                served.stop()
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "dashboard at" not in r.stderr


def test_token_cli(new_db):
    db = new_db()
    first = token(db, "pi-kitchen")
    assert len(first) >= 40
    r = edge_cli("token", "create", "pi-kitchen", "--db", db)
    assert r.returncode == 2 and "already has a token" in r.stderr
    r = edge_cli("token", "create", "../etc", "--db", db)
    assert r.returncode == 2 and "'../etc': letters, digits" in r.stderr
    r = edge_cli("token", "list", "--db", db)
    assert "pi-kitchen" in r.stdout and first not in r.stdout
    r = edge_cli("token", "revoke", "nobody", "--db", db)
    assert r.returncode == 2 and "has no token" in r.stderr


def test_a_folder_is_no_database(tmp_path):
    r = edge_cli("serve", "--db", tmp_path)
    assert r.returncode == 2 and "is a folder" in r.stderr


PLACES = (
    ("extra",),
    ("latency_ms", "inference", "p50"),
    ("latency_ms", "frame", "extra"),
    ("options", "smooth"),
    ("labels", 0),
    ("per_class", "2", "f1"),
    ("top_k_accuracy", "1"),
    ("window", "start"),
    ("evaluated",),
    ("model",),
    ("notes",),
)


@pytest.fixture(scope="module")
def fuzz_host(new_db):
    """A host of its own, and how many reports it has taken."""
    db = new_db()
    secret = token(db, "pi-fuzz")
    with Server(db).start() as server:
        yield server, secret, {"stored": 0}


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_whatever_is_accepted_comes_back_out_of_every_read(fuzz_host, summary, data):
    """Hostile values (huge integers, non-finite numbers, lone surrogates, deep nesting) put anywhere in a real
    report: the host stores it only if every read can serve it back, and every read keeps answering."""
    server, secret, taken = fuzz_host
    report = copy.deepcopy(reports(summary, "pi-fuzz", 1)[0])  # changed below: the summary is shared
    for _ in range(data.draw(st.integers(1, 3))):
        *path, last = data.draw(st.sampled_from(PLACES))
        where = report
        for key in path:
            where = where[key]
        where[last] = data.draw(HOSTILE)
    code, answer = server.request("POST", "/api/v1/reports", hostile_json({"reports": [report]}).encode(), secret)
    assert code in (200, 400, 422), (code, answer)
    taken["stored"] += code == 200
    for path in ("/api/v1/devices", "/api/v1/devices/pi-fuzz/reports?limit=10000", "/api/v1/devices/pi-fuzz/field"):
        status, body = server.get(path)
        assert status == (200 if taken["stored"] or path == "/api/v1/devices" else 404), (path, status, body)
    if taken["stored"]:
        assert len(server.get("/api/v1/devices/pi-fuzz/reports?limit=10000")[1]["reports"]) == taken["stored"]
    status, text = server.get("/api/v1/export.csv")
    assert status == 200 and len(list(csv.DictReader(io.StringIO(text)))) == taken["stored"]
