"""Model versions on `edge serve` (edge.server.models): a publisher uploads files and a signed release, the host
numbers it NAME@N and serves it back whole, to a device that verifies it, a cut download resumed by Range."""

import hashlib
import http.client
import json

import pytest

from edge.server import schema
from edge.server.store import open_db
from edge.signing import check_files, create_keys, load_public_key, sign_bundle, verify
from tests.bundles import carried_bundle
from tests.cli import edge_cli
from tests.hostile import NUL_TEXT
from tests.server import Server, token


@pytest.fixture(scope="module")
def host(tmp_path_factory, new_db):
    """A real server, a publisher, a device and a reader, and a key pair."""
    tmp = tmp_path_factory.mktemp("models")
    db = new_db()
    publisher = token(db, "ci", "--publisher")
    tokens = {"publisher": publisher, "device": token(db, "pi-kitchen"), "reader": token(db, "ops", "--reader")}
    private, public = create_keys(tmp / "keys")
    server = Server(db, None, "--protect-reads").start()
    yield {"server": server, "tokens": tokens, "key": private, "trusted": [load_public_key(public)], "tmp": tmp}
    server.stop()


def raw(server, method, path, body=None, token=None, headers=None):
    """(status, headers, body bytes) of one request."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.request(method, path, body, {**({"Authorization": f"Bearer {token}"} if token else {}), **(headers or {})})
    response = conn.getresponse()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()


def push(host, folder, name="digits"):
    """Upload a bundle's files and push its signed release, as 'edge models push' does: (status, answer)."""
    signed = sign_bundle(folder, host["key"])
    for file, facts in signed["release"]["files"].items():
        status, _, _ = raw(
            host["server"],
            "PUT",
            f"/api/v1/files/{facts['sha256']}",
            (folder / file).read_bytes(),
            host["tokens"]["publisher"],
        )
        assert status == 200
    return host["server"].request("POST", f"/api/v1/models/{name}", signed, host["tokens"]["publisher"])


def test_a_pushed_release_is_numbered_once_and_served_back_whole(host, tmp_path):
    server, tokens = host["server"], host["tokens"]
    first = carried_bundle(tmp_path / "v1")
    assert push(host, first) == (201, {"name": "digits", "version": 1, "new": True})
    assert push(host, first) == (200, {"name": "digits", "version": 1, "new": False})  # a retried push
    second = carried_bundle(tmp_path / "v2", b"\x1c\x00\x00\x00TFL3" + bytes(range(256)) * 9)
    assert push(host, second)[1]["version"] == 2
    status, listed = server.get("/api/v1/models?name=digits", tokens["reader"])
    assert status == 200 and [(m["version"], m["files"], m["withdrawn"]) for m in listed["models"]] == [
        (2, 3, None),
        (1, 3, None),
    ]
    status, signed = server.get("/api/v1/models/digits/1", tokens["device"])
    assert status == 200 and signed["version"] == 1
    release = verify(signed, host["trusted"])  # the host's number sits beside the signed words, not in them
    got = tmp_path / "got"
    got.mkdir()
    for file, facts in release["files"].items():
        status, headers, body = raw(server, "GET", f"/api/v1/files/{facts['sha256']}", token=tokens["device"])
        assert status == 200 and headers["accept-ranges"] == "bytes" and len(body) == facts["bytes"]
        (got / file).write_bytes(body)
    check_files(got, release)


def test_a_cut_download_resumes_from_where_it_stopped(host, tmp_path):
    folder = carried_bundle(tmp_path / "b", bytes(range(256)) * 4096 + b"TFL3")  # 1 MiB and a bit: two chunks
    push(host, folder, "big")
    data = (folder / "model.tflite").read_bytes()
    path = f"/api/v1/files/{hashlib.sha256(data).hexdigest()}"
    device = host["tokens"]["device"]
    status, headers, tail = raw(host["server"], "GET", path, token=device, headers={"Range": "bytes=1000-"})
    assert status == 206 and headers["content-range"] == f"bytes 1000-{len(data) - 1}/{len(data)}"
    assert data[:1000] + tail == data
    status, headers, middle = raw(host["server"], "GET", path, token=device, headers={"Range": "bytes=10-19"})
    assert status == 206 and middle == data[10:20]
    for bad in (f"bytes={len(data)}-", "bytes=5-2", "bytes=-100", "bytes=0-1,5-6", "items=0-"):
        status, headers, body = raw(host["server"], "GET", path, token=device, headers={"Range": bad})
        assert status == 416 and headers["content-range"] == f"bytes */{len(data)}", bad


def test_only_a_publisher_pushes_and_only_a_token_reads(host, tmp_path):
    server, tokens = host["server"], host["tokens"]
    folder = carried_bundle(tmp_path / "b")
    signed = sign_bundle(folder, host["key"])
    model = signed["release"]["files"]["model.tflite"]["sha256"]
    for who in ("device", "reader"):
        status, _, body = raw(server, "PUT", f"/api/v1/files/{model}", b"x", tokens[who])
        assert status == 403 and b"pushing models needs a publisher token (edge token create NAME --publisher)" in body
        assert server.request("POST", "/api/v1/models/digits", signed, tokens[who])[0] == 403
    assert server.request("POST", "/api/v1/models/digits", signed)[0] == 401
    assert raw(server, "GET", f"/api/v1/files/{model}")[0] == 401
    assert server.get("/api/v1/models")[0] == 401


def test_bad_pushes_are_refused_with_what_to_do(host, tmp_path):
    server, publisher = host["server"], host["tokens"]["publisher"]
    folder = carried_bundle(tmp_path / "b", b"TFL3 never uploaded")
    signed = sign_bundle(folder, host["key"])
    status, answer = server.request("POST", "/api/v1/models/fresh", signed, publisher)
    held = "the host lacks 2 file(s) of the release (edge.json, model.tflite)"  # labels.txt: one of an earlier push
    assert status == 409 and held in answer["error"]
    assert "upload them first (PUT /api/v1/files/SHA256)" in answer["error"]
    status, _, body = raw(server, "PUT", f"/api/v1/files/{'0' * 64}", b"other bytes", publisher)
    assert status == 422 and b"it was cut or changed on the way" in body
    assert raw(server, "PUT", "/api/v1/files/NOTAHASH", b"x", publisher)[0] == 404
    hostile = json.loads(json.dumps(signed))
    hostile["release"]["files"] = {"../../etc/passwd": {"bytes": 1, "sha256": "0" * 64}}
    status, answer = server.request("POST", "/api/v1/models/fresh", hostile, publisher)
    assert status == 422 and "does not list its files as name: {bytes, sha256}" in answer["error"]
    status, answer = server.request("POST", "/api/v1/models/bad%20name", signed, publisher)
    assert status == 422 and "model name 'bad name': letters, digits" in answer["error"]
    assert server.request("POST", "/api/v1/models/fresh", b"[1, 2", publisher)[0] == 400
    assert server.get("/api/v1/models/fresh/1", publisher)[0] == 404
    assert server.get("/api/v1/models/fresh/x", publisher)[0] == 404


def test_a_withdrawn_version_is_listed_as_such(host, tmp_path):
    server, publisher = host["server"], host["tokens"]["publisher"]
    version = push(host, carried_bundle(tmp_path / "b", b"TFL3 withdrawn"), "old")[1]["version"]
    assert server.request("POST", f"/api/v1/models/old/{version}/withdraw", b"", publisher)[0] == 200
    status, listed = server.get("/api/v1/models?name=old", publisher)
    assert status == 200 and listed["models"][0]["withdrawn"] is not None
    assert server.request("POST", "/api/v1/models/old/99/withdraw", b"", publisher)[0] == 404


def test_a_key_id_holding_a_nul_is_never_a_500(host, tmp_path):
    server, publisher = host["server"], host["tokens"]["publisher"]
    folder = carried_bundle(tmp_path / "b", b"TFL3 a key named oddly")
    push(host, folder, "keyed")  # its files uploaded
    signed = {**sign_bundle(folder, host["key"]), "key_id": NUL_TEXT}
    status, answer = server.request("POST", "/api/v1/models/oddly", signed, publisher)
    assert status == 422 and "key_id is not a key's name" in answer["error"], (status, answer)


def test_a_store_of_version_4_gains_the_model_tables_when_opened(tmp_path):
    db = tmp_path / "edge.db"
    with open_db(db) as conn:
        conn.executescript("DROP TABLE models; DROP TABLE model_files; PRAGMA user_version = 4")
    with open_db(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == schema.VERSION
        assert conn.execute("SELECT count(*) FROM models").fetchone()[0] == 0


def test_a_store_of_version_5_gains_rollout_waves_when_opened(tmp_path):
    db = tmp_path / "edge.db"
    with open_db(db) as conn:
        table = next(t for t in schema.TABLES.split(";") if "TABLE IF NOT EXISTS rollouts " in t)
        old = table.replace(",\n    waves TEXT NOT NULL DEFAULT '[]', stage INTEGER NOT NULL DEFAULT 0", "")
        assert old != table
        conn.executescript(f"DROP TABLE rollouts; {old}; PRAGMA user_version = 5")
        assert "waves" not in {row[1] for row in conn.execute("PRAGMA table_info(rollouts)")}
    with open_db(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == schema.VERSION
        assert {"waves", "stage"} <= {row[1] for row in conn.execute("PRAGMA table_info(rollouts)")}


def test_a_token_has_one_role(tmp_path):
    r = edge_cli("token", "create", "ci", "--reader", "--publisher", "--db", tmp_path / "edge.db")
    assert r.returncode == 2 and "give --reader or --publisher, not both: a token has one role" in r.stderr
    assert not (tmp_path / "edge.db").exists()  # refused before the database is opened
