"""The dashboard in a real headless browser (Debian's chromium): after a device has reported, the page
shows the device, its latency, FPS and drift over time, and the confusion matrix of its field evaluation."""
import csv
import io
import re
import subprocess

import numpy as np
import pytest

from edge.collect import CollectOptions
from edge.reporter import ReportOptions
from edge.runner import RunOptions, run
from tests.browser import CHROMIUM, Browser
from tests.cli import edge_cli
from tests.server import Server

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs chromium (apt install chromium)")


def render(url: str, profile, *args: str) -> str:
    """The page's DOM once its scripts have run and its requests have been answered."""
    r = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                        "--disable-background-networking", "--disable-component-update", "--disable-sync",
                        f"--user-data-dir={profile}", "--virtual-time-budget=10000", *args, url],
                       capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


def test_dashboard_shows_what_the_device_reported(e2e, digits, tmp_path):
    db = tmp_path / "edge.db"
    token = edge_cli("token", "create", "pi-kitchen", "--db", db).stdout.strip()
    server = Server(db).start()
    try:
        # Every window judged for drift, however few its frames: scans of one digit against a fingerprint of four
        summary = run(e2e["bundle"], digits / "2", RunOptions(truth="2", drift_min_frames=1), None, ReportOptions(
            server.url, token, "pi-kitchen", every=0.02, outbox=tmp_path / "outbox.db"))
        dom = render(server.url + "/", tmp_path / "profile", "--dump-dom")
        render(server.url + "/", tmp_path / "profile2", "--window-size=1100,900",
               f"--screenshot={tmp_path / 'dashboard.png'}")
        held = server.get("/api/v1/devices/pi-kitchen/reports")[1]["reports"]
        exported = list(csv.DictReader(io.StringIO(server.get("/api/v1/export.csv")[1])))
    finally:
        server.stop()
    reports = summary["reporting"]["reports"]
    assert reports == len(held) >= 2 and 'data-loaded="yes"' in dom
    assert re.search(r'<tr data-device="pi-kitchen"[^>]*>', dom)
    # latency p50 and p99, and FPS: one point a report that has them (a first window shorter than the warm-up,
    # or one with a single frame, has none)
    points = [int(n) for n in re.findall(r'data-points="(\d+)"', dom)]
    timed = sum(r["latency_ms"]["inference"]["p50"] is not None for r in held)
    levels = [r["drift"]["level"] for r in held]
    assert set(levels) <= {"ok", "watch", "drift"} and "drift" in levels  # one class where four were seen
    assert points == [timed, timed, sum(r["fps"] is not None for r in held), len(held)] and timed >= reports - 1
    latest = max(held, key=lambda r: r["window"]["end"])["drift"]["level"]
    assert re.search(rf'<tr data-device="pi-kitchen"[^>]*>.*<td data-drift="{latest}">{latest}</td>', dom)
    by_id = {row["id"]: row for row in exported}
    assert [(by_id[r["id"]]["drift_level"], float(by_id[r["id"]]["drift_psi_max"])) for r in held] == [
        (r["drift"]["level"], pytest.approx(max(r["drift"]["psi"].values()))) for r in held]
    cells = dict(((t, p), int(n)) for t, p, n in re.findall(
        r'data-truth="([^"]+)" data-predicted="([^"]+)"[^>]*>(\d+)<', dom))
    cm = np.array(summary["confusion_matrix"])
    seen = np.nonzero(cm.sum(axis=0) + cm.sum(axis=1))[0]  # the classes of the run, in truth or prediction
    labels = [summary["labels"][c] for c in seen]
    assert [[cells[(t, p)] for p in labels] for t in labels] == cm[np.ix_(seen, seen)].tolist()
    shown = f" (the {len(seen)} of 4 classes seen)" if len(seen) < 4 else ""
    assert f"accuracy {summary['accuracy']:.4f} on {summary['evaluated']} frames{shown}" in dom
    assert (tmp_path / "dashboard.png").stat().st_size > 10_000


def test_collected_frames_are_labelled_with_keys_and_clicks_then_exported(e2e, digits, tmp_path):
    """A person labels what a device collected, in a real browser: a number key, a click, a new class typed,
    a discard; `edge frames export` then writes the labelled frames as image folders."""
    db = tmp_path / "edge.db"
    token = edge_cli("token", "create", "pi-door", "--db", db).stdout.strip()
    server = Server(db).start()
    browser = None
    try:
        summary = run(e2e["bundle"], digits / "2", RunOptions(truth="2"), None,
                      ReportOptions(server.url, token, "pi-door", outbox=tmp_path / "outbox.db"),
                      CollectOptions("every:40", store=tmp_path / "frames.db"))
        assert summary["collecting"]["sent"] == 5
        browser = Browser(tmp_path / "profile")
        browser.open(server.url + "/")
        shown = "document.querySelector('#frame-card').getAttribute('data-frame')"
        seen = [browser.wait(f"document.querySelector('#frame-card') && {shown}")]

        def next_frame():
            seen.append(browser.wait(f"(() => {{ const f = {shown}; return f !== {seen[-1]!r} && f; }})()"))

        about = browser.eval("document.getElementById('frame-about').textContent")
        assert about.startswith("every: called ") and ", truth 2; frame 0," in about
        browser.press("3")  # the third class: "2"
        next_frame()
        browser.click('#frame-classes button[data-label="0"]')
        next_frame()
        browser.press("n")
        browser.type("seven")
        browser.press("Enter")
        next_frame()
        browser.press("d")
        next_frame()
        assert browser.wait("document.getElementById('frame-counts').textContent") == \
            "(1 new, 3 labelled, 1 discarded)"
        _, listing = server.get("/api/v1/devices/pi-door/frames?state=all")
        jpegs = {f["id"]: server.get(f"/api/v1/frames/{f['id']}.jpg")[1] for f in listing["frames"]}
    finally:
        if browser:
            browser.close()
        server.stop()
    assert [(f["id"], f["frame"], f["labelled_as"], f["discarded"]) for f in listing["frames"]] == [
        (seen[0], 0, "2", False), (seen[1], 40, "0", False), (seen[2], 80, "seven", False),
        (seen[3], 120, None, True), (seen[4], 160, None, False)]
    r = edge_cli("frames", "export", "--db", db, "--out", tmp_path / "field")
    assert r.returncode == 0, r.stderr
    assert "new class  seven: 1 frames labelled with a class the model did not know" in r.stdout
    written = {p.relative_to(tmp_path / "field").as_posix(): p.read_bytes() for p in (tmp_path / "field").rglob("*.jpg")}
    assert written == {f"2/{seen[0]}.jpg": jpegs[seen[0]], f"0/{seen[1]}.jpg": jpegs[seen[1]],
                       f"seven/{seen[2]}.jpg": jpegs[seen[2]]}
