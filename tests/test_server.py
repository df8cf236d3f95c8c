"""`edge serve` as a real process on loopback: reports stored once and shown, tokens enforced, and
bad, huge, malformed and hostile bodies refused with the right code while the server keeps serving."""
import csv
import hashlib
import http.client
import io
import json
import sqlite3
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.report import make_report
from edge.runner import RunOptions, run
from tests.cli import edge_cli
from tests.server import Server


@pytest.fixture(scope="module")
def summary(e2e, digits):
    """A real `edge run --json` summary: the digits bundle on the scans of one digit, with its truth."""
    return run(e2e["bundle"], digits / "2", RunOptions(truth="2"))


def reports(summary, device, n, run_id=None):
    sha = hashlib.sha256(open(summary["model"], "rb").read()).hexdigest()
    run_id = run_id or uuid.uuid4().hex
    return [make_report(summary, device, run_id, seq, sha, 1.8e9 + seq, 1.8e9 + seq + 1) for seq in range(n)]


def token(db, name, *args):
    r = edge_cli("token", "create", name, "--db", db, *args)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    db = tmp_path_factory.mktemp("serve") / "edge.db"
    tokens = {name: token(db, name) for name in ("pi-kitchen", "pi-garage")}
    tokens["alice"] = token(db, "alice", "--reader")
    server = Server(db, None, "--max-body", "200000").start()
    yield server, tokens
    server.stop()


def test_reports_are_stored_once_and_shown(host, summary):
    server, tokens = host
    batch = reports(summary, "pi-kitchen", 3)
    assert server.post(batch, tokens["pi-kitchen"]) == (200, {"stored": 3, "duplicates": 0})
    assert server.post(batch, tokens["pi-kitchen"]) == (200, {"stored": 0, "duplicates": 3})  # a retry
    status, body = server.get("/api/v1/devices")
    device = next(d for d in body["devices"] if d["device"] == "pi-kitchen")
    assert status == 200 and device["reports"] == 3 and device["latest"]["seq"] == 2
    assert device["field"]["confusion_matrix"] == (3 * __import__("numpy").array(summary["confusion_matrix"])).tolist()
    assert device["field"]["accuracy"] == pytest.approx(summary["accuracy"])
    status, body = server.get("/api/v1/devices/pi-kitchen/reports?limit=2")
    assert status == 200 and [r["seq"] for r in body["reports"]] == [1, 2]
    assert body["reports"][0]["confusion_matrix"] == summary["confusion_matrix"]
    status, text = server.get("/api/v1/export.csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    mine = [r for r in rows if r["device"] == "pi-kitchen"]
    assert status == 200 and len(mine) == 3 and float(mine[0]["accuracy"]) == pytest.approx(summary["accuracy"])


def test_tokens_are_stored_hashed(host):
    server, tokens = host
    raw = server.db.read_bytes() + (server.db.with_name("edge.db-wal").read_bytes()
                                    if server.db.with_name("edge.db-wal").exists() else b"")
    assert not any(t.encode() in raw for t in tokens.values())
    names = {n for (n,) in sqlite3.connect(server.db).execute("SELECT name FROM tokens")}
    assert names == {"pi-kitchen", "pi-garage", "alice"}


@pytest.mark.parametrize("who,device,status,message", [
    (None, "pi-kitchen", 401, "missing token"),
    ("not-a-token", "pi-kitchen", 401, "unknown or revoked"),
    ("pi-garage", "pi-kitchen", 403, "token is 'pi-garage''s"),
    ("alice", "alice", 403, "reader token"),
])
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
        (b"[" * 50_000 + b"]" * 50_000, 400),  # nested too deep to parse
        (b'"just a string"', 422),
        (b'{"reports": []}', 422),
        (json.dumps({"reports": [{**good, "accuracy": 2.0}]}).encode(), 422),
        (json.dumps({"reports": [{**good, "confusion_matrix": [[1]]}]}).encode(), 422),
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
@given(st.one_of(
    st.binary(max_size=2000),
    st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                 lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children,
                                                                                  max_size=5), max_leaves=30)
    .map(lambda v: json.dumps({"reports": [v]}).encode()),
))
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
    report[key] = data.draw(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=70)
                            | st.lists(st.integers(), max_size=3) | st.dictionaries(st.text(max_size=5), st.integers()))
    code, answer = server.request("POST", "/api/v1/reports", json.dumps({"reports": [report]}).encode(),
                                  tokens["pi-garage"])
    assert code in (200, 400, 403, 422), (key, report[key], code, answer)
    if code == 200:  # what was taken is stored as sent
        _, body = server.get("/api/v1/devices/pi-garage/reports?limit=10000")
        assert report in body["reports"]


def test_protected_reads_need_a_token(tmp_path, summary):
    db = tmp_path / "edge.db"
    reader, device = token(db, "alice", "--reader"), token(db, "pi-kitchen")
    server = Server(db, None, "--protect-reads").start()
    try:
        assert server.post(reports(summary, "pi-kitchen", 1), device)[0] == 200
        assert server.get("/api/v1/devices")[0] == 401
        assert server.get("/api/v1/export.csv")[0] == 401
        status, body = server.get("/api/v1/devices", token=reader)
        assert status == 200 and body["devices"][0]["device"] == "pi-kitchen"
        assert server.get("/healthz")[0] == 200 and server.get("/")[0] == 200  # the page itself holds no data
    finally:
        server.stop()


def test_token_cli(tmp_path):
    db = tmp_path / "edge.db"
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
    r = edge_cli("serve", "--db", tmp_path)
    assert r.returncode == 2 and "is a folder" in r.stderr
