"""Stopping `edge run` from outside: SIGTERM (systemd's stop and restart), SIGHUP and SIGINT (Ctrl-C) each end
the real command like the end of its source: the last window reported, the reporter flushed, the summary
written, exit code 0."""

import json
import signal
import subprocess
import sys
import time

import pytest

from edge.runner import RunOptions, run
from tests.cli import edge_cli
from tests.server import Server
from tests.videos import scan_video

SIGNALS = ("SIGTERM", "SIGHUP", "SIGINT")


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    """The real `edge serve`, with a device token for each signal."""
    db = tmp_path_factory.mktemp("host") / "edge.db"
    tokens = {name: edge_cli("token", "create", f"pi-{name.lower()}", "--db", db).stdout.strip() for name in SIGNALS}
    with Server(db).start() as server:
        yield server, tokens


@pytest.fixture(scope="module")
def long_video(digits, tmp_path_factory):
    """20 s of real scans at 30 fps (FFV1): far longer than any of these runs."""
    return scan_video(tmp_path_factory.mktemp("video") / "long.avi", digits / "2", 600)


def default_signals():
    """As systemd starts a service: no signal ignored (nohup, or a shell's background job, would leave SIGHUP or
    SIGINT ignored, and edge keeps an ignored signal ignored)."""
    for name in SIGNALS:
        signal.signal(getattr(signal, name), signal.SIG_DFL)


@pytest.mark.parametrize("name", SIGNALS)
def test_a_signal_ends_the_run_with_every_report_on_the_host(e2e, host, long_video, tmp_path, name):
    server, tokens = host
    device = f"pi-{name.lower()}"
    runner = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edge.cli",
            "run",
            e2e.bundle,
            "--source",
            str(long_video),
            "--realtime",
            "--truth",
            "2",
            "--report-to",
            server.url,
            "--token",
            tokens[name],
            "--device-id",
            device,
            "--report-every",
            "1",
            "--outbox",
            str(tmp_path / "outbox.db"),
            "--json",
            str(tmp_path / "summary.json"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_signals,
    )
    try:
        while server.get(f"/api/v1/devices/{device}/reports")[0] != 200:  # 404 until its first report
            assert runner.poll() is None, runner.stderr.read()
            time.sleep(0.05)
        sent = time.perf_counter()
        runner.send_signal(getattr(signal, name))
        _, errors = runner.communicate(timeout=60)
        took = time.perf_counter() - sent
    finally:
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == 0 and took < 5, (took, errors)
    assert f"{name}: writing the summary" in errors
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert f"stopped by {name}" in summary["notes"] and summary["seconds"] < 15
    reporting = summary["reporting"]
    reports = [
        r
        for r in server.get(f"/api/v1/devices/{device}/reports?limit=10000")[1]["reports"]
        if r["run_id"] == reporting["run_id"]
    ]
    assert reporting["pending"] == 0 and reporting["sent"] == reporting["reports"] == len(reports) >= 2
    assert sorted(r["seq"] for r in reports) == list(range(len(reports)))
    # the summary is whole: every frame it counts is in a report, the last partial window's too
    assert sum(r["frames"] for r in reports) == summary["frames"] == summary["evaluated"] > 0
    assert sum(r["evaluated"] for r in reports) == summary["per_class"]["2"]["support"] == summary["frames"]


def test_run_puts_the_handlers_back(e2e, digits):
    before = {name: signal.getsignal(getattr(signal, name)) for name in SIGNALS}
    summary = run(e2e.bundle, digits / "1", RunOptions(truth="1", max_frames=3))
    assert summary.frames == 3 and not [note for note in summary.notes if note.startswith("stopped by")]
    assert {name: signal.getsignal(getattr(signal, name)) for name in SIGNALS} == before
