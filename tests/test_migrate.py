"""`edge serve migrate`: a real SQLite host store (tokens, reports, frames and labels, a model version, a rollout)
copied into a real PostgreSQL (tests/postgres.py), read back the same through the store functions and a real
`edge serve`; cut short and run again, it carries on without copying anything twice; a target holding another
host's data and bad input refused in one line."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing

import psycopg
import pytest
from click.testing import CliRunner

from edge.cli import cli
from edge.server import alerts, migrate, releases, rollouts_store, schema, store
from edge.server.guard import Guard
from edge.signing import create_keys, sign_bundle
from tests.bundles import carried_bundle
from tests.cli import edge_cli
from tests.jpegs import encoded
from tests.server import Server
from tests.test_database import reports
from tests.test_schema import version_5
from tests.test_server_frames import record


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    """A SQLite store as a host leaves it, every table holding rows: (its path, the device's token)."""
    folder = tmp_path_factory.mktemp("host")
    path = folder / "edge.db"
    db = store.open_db(path)
    secret = store.create_token(db, "pi-1")
    store.create_token(db, "ops", "reader")
    for device in ("pi-1", "pi-2"):
        store.store_posts(db, [("reports", device, reports(device, 30, start=time.time() - 100))])
    frames = [record(encoded(64, 48), "pi-1") for _ in range(3)]
    store.store_posts(db, [("frames", "pi-1", frames)])
    store.store_posts(db, [("labels", None, [{"id": frames[0]["id"], "label": "2", "discard": False}])])
    bundle = carried_bundle(folder / "bundle")
    signed = sign_bundle(bundle, create_keys(folder / "keys")[0])
    for file, facts in signed["release"]["files"].items():
        releases.store_file(db, facts["sha256"], (bundle / file).read_bytes())
    releases.push(db, "cams", signed, "ci")
    rollouts_store.start(db, "cams", 1, None, 1, 1, 60, Guard(), "ci")
    assert len(list(alerts.check(db, time.time() + 3600))) == 2  # an hour on, both devices are offline
    db.close()
    return path, secret


def counts(result) -> dict:
    return {name: (c["source"], c["target"]) for name, c in result["tables"].items()}


def run(*args):
    r = edge_cli("serve", "migrate", *map(str, args))
    return r.returncode, r.stdout, r.stderr


def held(db) -> dict:
    """What the store functions read from a store: the same for the source and its copy."""
    signed = releases.signed_release(db, "cams", 1)
    assert signed is not None
    blob = releases.file_blob(db, signed["release"]["files"]["model.tflite"]["sha256"])
    assert blob is not None
    return {
        "tokens": store.list_tokens(db),
        "devices": store.devices(db),
        "reports": [store.device_reports(db, d) for d in ("pi-1", "pi-2")],
        "all": list(store.all_reports(db)),
        "frames": [store.device_frames(db, "pi-1", state) for state in store.FRAME_STATES],
        "counts": store.frame_counts(db, "pi-1"),
        "labelled": list(store.frame_files(db)),
        "versions": releases.versions(db),
        "model": releases.read_range(db, blob[0], 0, blob[1]),
        "rollouts": rollouts_store.rollouts(db),
        "assigned": [rollouts_store.assignment(db, d) for d in ("pi-1", "pi-2")],
        "alerts": alerts.active(db),
    }


def test_a_store_is_copied_whole_and_reads_back_the_same(cluster, host):
    path, secret = host
    url = cluster.url()
    code, out, err = run("--from", path, "--to", url, "--json")
    assert code == 0, err
    result = json.loads(out)
    assert all(source == target > 0 for source, target in counts(result).values()), result
    assert result["copied"] == sum(source for source, _ in counts(result).values())
    again = run("--from", path, "--to", url, "--json")  # harmless: nothing copied, the counts agree
    assert again[0] == 0 and json.loads(again[1])["copied"] == 0, again[2]
    with closing(store.open_db(path)) as source, closing(store.open_db(url)) as copy:
        assert held(copy) == held(source)
        assert store.who(copy, secret) == ("pi-1", "device")
        # rows the host takes later come after those copied (the identities moved past them)
        later = reports("pi-1", 2)
        store.store_posts(copy, [("reports", "pi-1", later)])
        assert [r for _, _, r in store.all_reports(copy)][-2:] == later


def test_a_real_host_serves_the_copy(cluster, host):
    """The device's token still lets it in, its reports are listed, the model version downloads whole."""
    path, secret = host
    url = cluster.url()
    assert run("--from", path, "--to", url)[0] == 0
    with Server(url).start() as server:
        status, listed = server.get("/api/v1/devices")
        assert status == 200 and [d["device"] for d in listed["devices"]] == ["pi-1", "pi-2"], listed
        status, read = server.get("/api/v1/devices/pi-1/reports")
        assert status == 200 and len(read["reports"]) == 30
        signed = server.get("/api/v1/models/cams/1", secret)[1]
        facts = signed["release"]["files"]["model.tflite"]
        status, model = server.get(f"/api/v1/files/{facts['sha256']}", secret)
        assert status == 200 and len(model) == facts["bytes"]
        assert server.post(reports("pi-1", 1), secret)[0] == 200


def blocked_at(url: str, report_id: str):
    """A transaction holding a report `report_id` not yet committed: a copy inserting that id waits on it (on
    no other: its rowid is one no copied row takes)."""
    conn = psycopg.connect(url)
    conn.execute(
        "INSERT INTO reports (id, device, run, received, window_start, window_end, evaluated, body, rowid) "
        "OVERRIDING SYSTEM VALUE VALUES (%s, 'x', 'x', 0, 0, 0, 0, 'x', -1)",
        (report_id,),
    )
    return conn


def wait_for_lock(url: str) -> int:
    """The pid of the copy's connection once it waits on a lock."""
    with psycopg.connect(url, autocommit=True) as conn:
        for _ in range(600):
            row = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
            ).fetchone()
            if row:
                return row[0]
            time.sleep(0.05)
    raise AssertionError("the copy never reached the report held back")


def wait_gone(url: str, pid: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        while conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone():
            time.sleep(0.05)


def test_a_copy_cut_short_carries_on_and_copies_nothing_twice(cluster, host):
    """Cut twice partway through the reports: once by the database dropping its connection (one line, exit 2),
    once by SIGKILL; each time the next run carries on, and the copy ends whole, each row once, in the
    order the rows came."""
    path, _ = host
    url = cluster.url()
    assert store.open_db(url).close() is None  # the tables, for the held-back report
    with sqlite3.connect(path) as source:
        ids = [i for (i,) in source.execute("SELECT id FROM reports ORDER BY rowid")]
    holding = blocked_at(url, ids[24])
    copy = subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "serve", "migrate", "--from", path, "--to", url, "--batch", "4"],
        stderr=subprocess.PIPE,
        text=True,
    )
    backend = wait_for_lock(url)
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (backend,))
    err = copy.communicate(timeout=30)[1]
    assert copy.returncode == 2 and err.count("\n") == 1 and "run the same command again" in err, err
    holding.rollback()
    with psycopg.connect(url) as target:
        assert target.execute("SELECT COUNT(*) FROM reports").fetchone() == (24,)  # six batches of four
        assert target.execute("SELECT COUNT(*) FROM tokens").fetchone() == (2,)

    holding = blocked_at(url, ids[40])
    copy = subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "serve", "migrate", "--from", path, "--to", url, "--batch", "4"],
        stderr=subprocess.PIPE,
    )
    backend = wait_for_lock(url)
    os.kill(copy.pid, signal.SIGKILL)
    copy.wait()
    holding.rollback()
    wait_gone(url, backend)
    with psycopg.connect(url) as target:
        assert target.execute("SELECT COUNT(*) FROM reports").fetchone() == (40,)

    code, out, err = run("--from", path, "--to", url, "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["tables"]["reports"] == {"source": 60, "target": 60, "copied": 20}
    assert all(source == target for source, target in counts(result).values())
    with psycopg.connect(url) as target:
        assert [i for (i,) in target.execute("SELECT id FROM reports ORDER BY rowid")] == ids


def test_a_target_holding_another_hosts_data_is_refused(cluster, host, tmp_path):
    """A report id held with another body, a token name held with another token: refused before anything is
    copied."""
    path, _ = host
    with sqlite3.connect(path) as source:
        first = json.loads(source.execute("SELECT body FROM reports ORDER BY rowid LIMIT 1").fetchone()[0])
    other_report, other_token = cluster.url(), cluster.url()
    with closing(store.open_db(other_report)) as target:
        store.store_posts(target, [("reports", "pi-1", [{**first, "frames": first["frames"] + 1}])])
    with closing(store.open_db(other_token)) as target:
        store.create_token(target, "pi-1")
    for url, table in ((other_report, "reports"), (other_token, "tokens")):
        code, _, err = run("--from", path, "--to", url)
        assert code == 2 and err.count("\n") == 1 and "holds data this store does not" in err, err
        assert table in err
        with psycopg.connect(url) as conn:  # nothing copied: the one row put there is all there is
            assert conn.execute("SELECT (SELECT COUNT(*) FROM tokens) + (SELECT COUNT(*) FROM reports)").fetchone() == (
                1,
            )


def test_bad_input_is_one_line(cluster, host, tmp_path):
    path, _ = host
    url = cluster.url()
    text = tmp_path / "notes.txt"
    text.write_text("not a database\n")
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE things (x)")
    unreachable = url.replace(f":{cluster.port}/", ":1/")
    cases = [
        (("--from", tmp_path / "none.db", "--to", url), "no such file"),
        (("--from", text, "--to", url), "is not an edge store"),
        (("--from", other, "--to", url), "is not an edge store"),
        (("--from", url, "--to", url), "give the SQLite file a host served"),
        (("--from", path, "--to", tmp_path / "new.db"), "give the PostgreSQL database to copy into"),
        (("--from", path, "--to", url.replace("edge@", "edge:s3cret@")), "PGPASSWORD or ~/.pgpass, not in the URL"),
        (("--from", path, "--to", unreachable), f"--to {unreachable}: cannot connect"),
        (("--from", path, "--to", url, "--batch", "0"), "--batch 0: give at least 1 row"),
    ]
    runs = [  # at once: each is a process of its own
        subprocess.Popen(
            [sys.executable, "-m", "edge.cli", "serve", "migrate", *map(str, args)], stderr=subprocess.PIPE, text=True
        )
        for args, _ in cases
    ]
    for (args, words), process in zip(cases, runs, strict=True):
        err = process.communicate(timeout=60)[1]
        assert process.returncode == 2 and err.count("\n") == 1 and words in err and "s3cret" not in err, (args, err)
    assert text.read_text() == "not a database\n"
    assert [t for (t,) in sqlite3.connect(other).execute("SELECT name FROM sqlite_master")] == ["things"]
    r = edge_cli("serve", "--port", "9000", "migrate", "--from", path, "--to", url)
    assert r.returncode == 2 and "takes its own options" in r.stderr, r.stderr


def test_a_store_of_an_older_edge_is_brought_up_and_copied(cluster, tmp_path):
    path = tmp_path / "edge.db"
    version_5(path)
    with closing(sqlite3.connect(path)) as db:
        db.execute("INSERT INTO tokens (name, role, hash, created) VALUES ('pi-1', 'device', 'h', 1.0)")
        db.commit()
    result = migrate.migrate(path, cluster.url())
    assert result.tables["tokens"] == {"source": 1, "target": 1, "copied": 1}
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == schema.VERSION


def test_edge_serve_lists_migrate():
    assert "migrate  Copy a host's SQLite store into PostgreSQL" in CliRunner().invoke(cli, ["serve", "--help"]).output


def test_the_result_reads_as_a_table():
    result = migrate.Migrated(
        source="edge.db",
        target="postgresql://edge@db/edge",
        tables={"reports": {"source": 1200, "target": 1200, "copied": 200}},
        copied=200,
        seconds=0.5,
    )
    assert migrate.text(result).splitlines()[1].split() == ["reports", "1,200", "1,200", "200"]
