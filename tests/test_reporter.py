"""Device reporting against the real `edge serve` process: the outbox keeps every report until the
host has stored it, a host killed and restarted mid-run loses nothing and duplicates nothing, and a
backlog left by an earlier run drains when the host is back."""

import http.server
import json
import sqlite3
import subprocess
import sys
import threading
import time
import uuid

import numpy as np
import pytest

from edge.errors import EdgeError
from edge.outbox import Outbox
from edge.report import make_report, matrix
from edge.reporter import Reporter, ReportOptions
from edge.runner import RunOptions, run
from tests.cli import edge_cli
from tests.reports import window_summary
from tests.server import Server, free_port
from tests.server import token as server_token
from tests.videos import scan_video


def stored(db, run_id) -> list[dict]:
    rows = sqlite3.connect(db).execute("SELECT body FROM reports WHERE run = ? ORDER BY window_end", (run_id,))
    return [json.loads(body) for (body,) in rows]


def assert_all_arrived(db, summary):
    """Every report of the run is on the host, once, and together they hold every frame of the run."""
    reporting = summary["reporting"]
    reports = stored(db, reporting["run_id"])
    assert reporting["pending"] == 0 and reporting["reports"] == len(reports)
    assert sorted(r["seq"] for r in reports) == list(range(len(reports)))
    assert sum(r["frames"] for r in reports) == summary["frames"]
    assert sum(r["evaluated"] for r in reports) == summary["evaluated"]
    assert np.sum([matrix(r) for r in reports], axis=0).tolist() == summary["confusion_matrix"]


def test_outbox_keeps_the_newest_within_its_limit(tmp_path):
    box = Outbox(tmp_path / "outbox.db", "reports", limit=3)
    assert [box.add(f'{{"n": {n}}}') for n in range(5)] == [0, 0, 0, 1, 1]
    assert [body for _, body in box.oldest(10)] == ['{"n": 2}', '{"n": 3}', '{"n": 4}']
    box.remove([seq for seq, _ in box.oldest(1)])
    box.close()
    again = Outbox(tmp_path / "outbox.db", "reports", limit=3)  # a reboot keeps what was not sent
    assert len(again) == 2 and again.counter("dropped") == 2


def test_outbox_keeps_the_newest_within_its_bytes(tmp_path):
    """The bound is the database's size on disk: items of 30,000 bytes in UTF-8 (7 pages each, the empty
    database 7 too) in 130,000 bytes."""
    box = Outbox(tmp_path / "frames.db", "frames", limit=100, max_bytes=130_000)
    bodies = [json.dumps({"n": n, "pad": "é" * 15_000}, ensure_ascii=False) for n in range(8)]
    assert [box.add(body) for body in bodies] == [0, 0, 0, 1, 1, 1, 1, 1]
    assert [json.loads(body)["n"] for _, body in box.oldest(10)] == [5, 6, 7]
    assert box.disk_bytes() <= 130_000 and (tmp_path / "frames.db").stat().st_size <= 130_000
    box.remove([seq for seq, _ in box.oldest(2)])
    assert box.disk_bytes() < 60_000 and box.counter("dropped") == 5
    assert box.add(json.dumps({"pad": "x" * 140_000})) == 2  # more than the bound: nothing can stay, itself included
    assert len(box) == 0


@pytest.fixture(scope="module")
def device(tmp_path_factory):
    """A host database with a token for pi-kitchen."""
    db = tmp_path_factory.mktemp("host") / "edge.db"
    r = edge_cli("token", "create", "pi-kitchen", "--db", db)
    assert r.returncode == 0, r.stderr
    return db, r.stdout.strip()


@pytest.fixture(scope="module")
def five_seconds(digits, tmp_path_factory):
    """150 frames of real scans of a 2 at 30 fps (FFV1), played in real time: a run that lasts 5 s."""
    return scan_video(tmp_path_factory.mktemp("video") / "twos.avi", digits / "2", 150)


def test_host_killed_and_restarted_mid_run_loses_and_duplicates_nothing(e2e, device, five_seconds, tmp_path):
    db, token = device
    server = Server(db).start()
    summary_file = tmp_path / "summary.json"
    runner = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edge.cli",
            "run",
            e2e.bundle,
            "--source",
            str(five_seconds),
            "--realtime",
            "--truth",
            "2",
            "--report-to",
            server.url,
            "--token",
            token,
            "--device-id",
            "pi-kitchen",
            "--report-every",
            "0.25",
            "--outbox",
            str(tmp_path / "outbox.db"),
            "--json",
            str(summary_file),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.5)
        server.kill()  # mid-run, maybe mid-request
        time.sleep(2.0)
        server.start()  # same port, same database
        _, errors = runner.communicate(timeout=120)
    finally:
        server.stop()
    assert runner.returncode == 0, errors
    assert "failed" in errors  # the outage was seen and retried
    summary = json.loads(summary_file.read_text())
    assert summary["reporting"]["reports"] >= 12 and summary["reporting"]["sent"] == summary["reporting"]["reports"]
    assert_all_arrived(db, summary)


def test_backlog_of_an_earlier_run_drains_when_the_host_is_back(e2e, digits, device, tmp_path):
    db, token = device
    port = free_port()
    options = dict(
        url=f"http://127.0.0.1:{port}", token=token, device_id="pi-kitchen", every=0.05, outbox=tmp_path / "outbox.db"
    )
    offline = run(
        e2e.bundle, digits / "1", RunOptions(truth="1", realtime=True, reporting=ReportOptions(**options, flush=0))
    )
    assert offline.reporting["sent"] == 0 and offline.reporting["pending"] == offline.reporting["reports"]
    server = Server(db, port).start()
    try:
        online = run(e2e.bundle, digits / "3", RunOptions(truth="3", max_frames=20, reporting=ReportOptions(**options)))
    finally:
        server.stop()
    assert online.reporting["sent"] == offline.reporting["reports"] + online.reporting["reports"]
    assert len(stored(db, offline.reporting["run_id"])) == offline.reporting["reports"]
    assert_all_arrived(db, online.to_json())


@pytest.mark.parametrize(
    "options,message",
    [
        (dict(url="192.168.1.10:8765"), "give the host's URL"),
        (dict(url="http://pi:s3cret@127.0.0.1:1"), "--report-to: give the host's URL without a user name or password"),
        (dict(url="pi:s3cret@127.0.0.1:1"), "without a user name or password"),
        (dict(url="http://127.0.0.1:s3cret"), "give the host's URL"),
        (dict(url="http://127.0.0.1:1/?token=s3cret"), "give the host's URL"),
        (dict(token=""), "needs --token"),
        (dict(device_id="../x"), "--device-id"),
        (dict(every=0), "--report-every"),
        (dict(every=float("nan")), "--report-every nan: give a positive number"),
        (dict(every=float("inf")), "--report-every inf: give a positive number"),
    ],
)
def test_bad_report_options(options, message, tmp_path):
    good = dict(url="http://127.0.0.1:1", token="t", device_id="pi", outbox=tmp_path / "o.db")
    with pytest.raises(EdgeError, match=message) as e:
        ReportOptions(**{**good, **options})
    assert "s3cret" not in str(e.value)


def test_a_url_s_password_is_refused_and_never_shown(e2e, digits):
    r = edge_cli(
        "run",
        e2e.bundle,
        "--source",
        digits / "2",
        "--report-to",
        "http://pi:s3cret@127.0.0.1:1",
        "--token",
        "t",
        "--device-id",
        "pi-kitchen",
    )
    assert r.returncode == 2 and "without a user name or password" in r.stderr
    assert "s3cret" not in r.stderr + r.stdout


def test_cli_reporting_options(e2e, digits):
    r = edge_cli("run", e2e.bundle, "--source", digits / "2", "--token", "abc")
    assert r.returncode == 2 and "add --report-to" in r.stderr
    r = edge_cli(
        "run", e2e.bundle, "--source", digits / "2", "--report-to", "http://127.0.0.1:1", "--device-id", "pi-kitchen"
    )
    assert r.returncode == 2 and "needs --token" in r.stderr


def window_report(device: str, seq: int, run_id: str) -> dict:
    """A report of a real (tiny) window: two frames of class b, one taken for a."""
    summary = window_summary(["a", "b"], [(1, 1), (1, 0)])
    return make_report(summary, device, run_id, seq, "ab" * 32, 1.8e9 + seq, 1.8e9 + seq + 1)


class CaptivePortal(http.server.BaseHTTPRequestHandler):
    """What a hotel network or a misconfigured proxy answers to everything: 200 and a login page."""

    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        page = b"<html><body>Please log in to use this network</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    def log_message(self, *args):
        pass


def test_only_the_host_s_own_word_lets_a_report_go(device, tmp_path):
    """A 200 from a captive portal is not an acknowledgement: the reports stay until edge serve names them."""
    db, token = device
    portal = http.server.ThreadingHTTPServer(("127.0.0.1", 0), CaptivePortal)
    threading.Thread(target=portal.serve_forever, daemon=True).start()
    run_id = uuid.uuid4().hex
    options = dict(token=token, device_id="pi-kitchen", outbox=tmp_path / "outbox.db", flush=1.0)
    try:
        reporter = Reporter(ReportOptions(url=f"http://127.0.0.1:{portal.server_address[1]}", **options))
        for seq in range(3):
            reporter.submit(window_report("pi-kitchen", seq, run_id))
        tally = reporter.close()
    finally:
        portal.shutdown()
    assert tally["sent"] == 0 and tally["pending"] == 3 and "not edge serve's" in tally["last_error"]
    server = Server(db).start()
    try:
        tally = Reporter(ReportOptions(url=server.url, **options)).close()
    finally:
        server.stop()
    assert tally["sent"] == 3 and tally["pending"] == 0 and len(stored(db, run_id)) == 3


class Redirect(http.server.BaseHTTPRequestHandler):
    """A captive portal's redirect to its login page, on another server, which notes the requests' headers."""

    location = None

    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(302)
        self.send_header("Location", self.location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


class Noting(CaptivePortal):
    seen: list[dict] = []

    def do_GET(self):
        self.seen.append(dict(self.headers))
        self.do_POST()


def serve(handler):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_a_redirect_is_not_followed_with_the_token(tmp_path):
    """urllib follows a 302 to wherever it points, Authorization header and all: the token would go to a
    captive portal's login page."""
    portal = serve(Noting)
    Redirect.location = f"http://127.0.0.1:{portal.server_address[1]}/login"
    redirect = serve(Redirect)
    try:
        reporter = Reporter(
            ReportOptions(
                f"http://127.0.0.1:{redirect.server_address[1]}",
                "s3cret-token",
                "pi-kitchen",
                outbox=tmp_path / "outbox.db",
                flush=1.0,
            )
        )
        reporter.submit(window_report("pi-kitchen", 0, uuid.uuid4().hex))
        tally = reporter.close()
    finally:
        portal.shutdown()
        redirect.shutdown()
    assert Noting.seen == [] and tally["sent"] == 0 and tally["pending"] == 1
    assert tally["last_error"].startswith("HTTP 302")


def test_a_device_sends_its_own_and_sets_another_s_aside(device, tmp_path):
    """pi-b's reports at the head of the outbox (the same outbox, or --device-id changed): pi-kitchen sends its
    own past them and counts them; a run as pi-b sends them."""
    db, token = device
    token_b = server_token(db, "pi-b")
    outbox, runs = tmp_path / "outbox.db", {"pi-b": uuid.uuid4().hex, "pi-kitchen": uuid.uuid4().hex}
    offline = Reporter(ReportOptions(f"http://127.0.0.1:{free_port()}", token_b, "pi-b", outbox=outbox, flush=0))
    for seq in range(3):
        offline.submit(window_report("pi-b", seq, runs["pi-b"]))
    assert offline.close()["pending"] == 3
    server = Server(db).start()
    logged = []
    try:
        reporter = Reporter(ReportOptions(server.url, token, "pi-kitchen", outbox=outbox, flush=5.0), logged.append)
        for seq in range(2):
            reporter.submit(window_report("pi-kitchen", seq, runs["pi-kitchen"]))
        tally = reporter.close()
        assert (tally["sent"], tally["pending"]) == (2, 0) and tally["set_aside"] == 3
        assert "3 reports in" in logged[0] and "(3 for pi-b): set aside" in logged[0]
        assert len(stored(db, runs["pi-kitchen"])) == 2 and stored(db, runs["pi-b"]) == []
        tally = Reporter(ReportOptions(server.url, token_b, "pi-b", outbox=outbox, flush=5.0)).close()
    finally:
        server.stop()
    assert (tally["sent"], tally["pending"], tally["set_aside"]) == (3, 0, 0) and len(stored(db, runs["pi-b"])) == 3
