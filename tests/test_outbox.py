"""The outbox as a file on a device in the field: a file damaged by a power cut is moved aside, whole, and the
run goes on; a file that is not an outbox (a person's text, another program's database) is refused untouched;
the store's bound holds for what is on disk, its log included."""

import json
import sqlite3
import uuid
from pathlib import Path

import cv2
import pytest

from edge.errors import EdgeError
from edge.frame_record import make_record
from edge.outbox import LIMIT, Outbox
from edge.report import make_report
from edge.reporter import Reporter, ReportOptions
from tests.cli import edge_cli
from tests.reports import window_summary
from tests.server import Server, free_port, token

PAGE = 4096


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    db = tmp_path_factory.mktemp("host") / "edge.db"
    secret = token(db, "pi-a")
    with Server(db).start() as server:
        yield server, secret


def report(seq: int, run_id: str) -> dict:
    return make_report(
        window_summary(["a", "b"], [(1, 1), (0, 0)]), "pi-a", run_id, seq, "ab" * 32, 1.8e9 + seq, 1.8e9 + seq + 1
    )


def garbage(n: int) -> bytes:
    """What a power cut on an SD card leaves: bytes that are no page of SQLite's."""
    return bytes((i * 167 + 13) % 251 for i in range(n))


def damaged_outbox(path: Path, pages: str) -> bytes:
    """A real outbox of 40 reports the host never took, its first page or all the others written over."""
    reporter = Reporter(ReportOptions(f"http://127.0.0.1:{free_port()}", "t", "pi-a", outbox=path, flush=0))
    for seq in range(40):
        reporter.submit(report(seq, "d" * 32))
    assert reporter.close()["pending"] == 40
    data = bytearray(path.read_bytes())
    assert len(data) > 4 * PAGE
    at = slice(0, PAGE) if pages == "first" else slice(PAGE, len(data))
    data[at] = garbage(len(data[at]))
    path.write_bytes(data)
    return bytes(data)


@pytest.mark.parametrize("pages", ["first", "others"])
def test_a_damaged_outbox_is_moved_aside_and_reporting_goes_on(host, tmp_path, pages):
    server, secret = host
    outbox = tmp_path / "outbox.db"
    damaged = damaged_outbox(outbox, pages)
    logged, run_id = [], uuid.uuid4().hex
    reporter = Reporter(ReportOptions(server.url, secret, "pi-a", outbox=outbox, flush=5.0), logged.append)
    reporter.submit(report(0, run_id))
    tally = reporter.close()
    assert (tally["sent"], tally["pending"]) == (1, 0)
    aside = Path(tally["moved_aside"])
    assert aside.parent == tmp_path and aside.name.startswith("outbox.db.damaged-") and aside.read_bytes() == damaged
    assert f"--outbox {outbox} is damaged" in logged[0] and f"moved aside, whole, to {aside}" in logged[0]


def test_a_damaged_collect_store_does_not_stop_the_device(e2e, digits, host, tmp_path):
    """`edge run` as a systemd unit after a power cut: it runs, says where the damaged file went, collects."""
    server, secret = host
    store = tmp_path / "frames.db"
    store.write_bytes(garbage(8 * PAGE))
    r = edge_cli(
        "run",
        e2e.bundle,
        "--source",
        digits / "2",
        "--report-to",
        server.url,
        "--token",
        secret,
        "--device-id",
        "pi-a",
        "--outbox",
        tmp_path / "outbox.db",
        "--collect",
        "every:50",
        "--collect-store",
        store,
        "--json",
        tmp_path / "summary.json",
    )
    assert r.returncode == 0, r.stderr
    collecting = json.loads((tmp_path / "summary.json").read_text())["collecting"]
    assert collecting["sent"] == 4 and Path(collecting["moved_aside"]).read_bytes() == garbage(8 * PAGE)
    assert f"--collect-store {store} is damaged (not an SQLite database): moved aside" in r.stderr


def test_a_file_that_is_not_an_outbox_is_refused_untouched(tmp_path):
    """A person's text file is not what a damaged outbox looks like (a device never writes text), and another
    program's database is readable and holds its own tables: moving either aside would take it from its
    owner, and writing our tables into it would change it."""
    notes = tmp_path / "notes.txt"
    notes.write_text("milk, eggs, a new SD card\n")
    theirs = tmp_path / "theirs.db"
    with sqlite3.connect(theirs) as db:
        db.execute("CREATE TABLE contacts (name TEXT)")
        db.execute("INSERT INTO contacts VALUES ('Ada')")
    db.close()
    theirs_message = r"is another program's database \(tables: contacts\)"
    for path, message in ((notes, "is a text file, not an outbox"), (theirs, theirs_message)):
        before = path.read_bytes()
        with pytest.raises(EdgeError, match=f"--outbox {path} {message}: give the reports a file of their own"):
            Reporter(ReportOptions("http://127.0.0.1:9", "t", "pi-a", outbox=path))
        assert path.read_bytes() == before and [p.name for p in tmp_path.glob(f"{path.name}*")] == [path.name]


def test_the_store_holds_its_size_on_disk_log_included(digits, tmp_path):
    """Frames of a 640x480 camera into a 1 MB store, some sent between: the database and its log together
    stay within 1 MB after every write (the log grew to 3.3 MB before its first checkpoint)."""
    scans = sorted((digits / "0").iterdir())[:20]
    jpegs = [
        cv2.imencode(".jpg", cv2.resize(cv2.imread(str(p)), (640, 480), interpolation=cv2.INTER_CUBIC))[1]
        for p in scans
    ]
    path = tmp_path / "frames.db"
    store = Outbox(path, "frames", "pi-a", LIMIT, 1_000_000)
    on_disk = []
    for n in range(120):
        store.add(json.dumps(make_record(jpegs[n % 20].tobytes(), {"id": uuid.uuid4().hex, "device_id": "pi-a"})))
        if n % 4 == 3:
            store.remove([seq for seq, _ in store.oldest(2)])  # sent
        on_disk.append(sum(p.stat().st_size for p in (path, tmp_path / "frames.db-wal") if p.exists()))
    assert store.counter("dropped") > 0 and store.pending() > 5
    assert max(on_disk) <= 1_000_000, max(on_disk)
