"""The dashboard in a real headless browser (Debian's chromium): after a device has reported, the page
shows the device, its latency, FPS and drift over time, and the confusion matrix of its field evaluation."""

import contextlib
import csv
import io
import re
import subprocess
import time

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
    assert CHROMIUM, "skipped without chromium (pytestmark)"
    r = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=10000",
            *args,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


def test_dashboard_shows_what_the_device_reported(e2e, digits, tmp_path, new_db):
    db = new_db()
    token = edge_cli("token", "create", "pi-kitchen", "--db", db).stdout.strip()
    server = Server(db).start()
    try:
        # Every window judged for drift, however few its frames: scans of one digit against a fingerprint of four
        summary = run(
            e2e.bundle,
            digits / "2",
            RunOptions(
                truth="2",
                drift_min_frames=1,
                reporting=ReportOptions(server.url, token, "pi-kitchen", every=0.02, outbox=tmp_path / "outbox.db"),
            ),
        )
        dom = render(server.url + "/", tmp_path / "profile", "--dump-dom")
        render(
            server.url + "/",
            tmp_path / "profile2",
            "--window-size=1100,900",
            f"--screenshot={tmp_path / 'dashboard.png'}",
        )
        held = server.get("/api/v1/devices/pi-kitchen/reports")[1]["reports"]
        exported = list(csv.DictReader(io.StringIO(server.get("/api/v1/export.csv")[1])))
    finally:
        server.stop()
    reports = summary.reporting["reports"]
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
        (r["drift"]["level"], pytest.approx(max(r["drift"]["psi"].values()))) for r in held
    ]
    cells = {
        (t, p): int(n) for t, p, n in re.findall(r'data-truth="([^"]+)" data-predicted="([^"]+)"[^>]*>(\d+)<', dom)
    }
    cm = np.array(summary.confusion_matrix)
    seen = np.nonzero(cm.sum(axis=0) + cm.sum(axis=1))[0]  # the classes of the run, in truth or prediction
    labels = [summary.labels[c] for c in seen]
    assert [[cells[(t, p)] for p in labels] for t in labels] == cm[np.ix_(seen, seen)].tolist()
    shown = f" (the {len(seen)} of 4 classes seen)" if len(seen) < 4 else ""
    assert f"accuracy {summary.accuracy:.4f} on {summary.evaluated} frames{shown}" in dom
    assert (tmp_path / "dashboard.png").stat().st_size > 10_000


SHOWN = "document.querySelector('#frame-card').getAttribute('data-frame')"  # the id of the frame on screen


@contextlib.contextmanager
def labelling(e2e, digits, tmp_path, device: str, every: int, latency: float = 0, db=None):
    """A run over the scans of 2 that sends every `every`th frame to a real host (on the store `db`, a new
    SQLite file if none), and a browser (each request `latency` ms late) on the dashboard, its first frame on
    screen: (server, browser, run summary, frame id)."""
    db = db or tmp_path / "edge.db"
    token = edge_cli("token", "create", device, "--db", db).stdout.strip()
    server = Server(db).start()
    browser = None
    try:
        summary = run(
            e2e.bundle,
            digits / "2",
            RunOptions(
                truth="2",
                reporting=ReportOptions(server.url, token, device, outbox=tmp_path / "outbox.db"),
                collecting=CollectOptions(f"every:{every}", store=tmp_path / "frames.db"),
            ),
        )
        sent = summary.collecting["sent"] if summary.collecting else None
        assert sent == len(range(0, len(list((digits / "2").iterdir())), every))
        browser = Browser(tmp_path / "profile")
        if latency:
            browser.slow_network(latency)
        browser.open(server.url + "/")
        yield server, browser, summary, browser.wait(f"document.querySelector('#frame-card:not([hidden])') && {SHOWN}")
    finally:
        if browser:
            browser.close()
        server.stop()


def next_frame(browser, before: str) -> str:
    """The id of the next frame on screen, once the dashboard waits for nothing."""
    return browser.wait(
        f"(() => {{ const f = {SHOWN}; return f !== {before!r} && "
        "!document.querySelector('#frame-card[data-busy]') && f; })()"
    )


def test_collected_frames_are_labelled_with_keys_and_clicks_then_exported(e2e, digits, tmp_path, new_db):
    """A person labels what a device collected, in a real browser: a number key, a click, a new class typed,
    a discard; `edge frames export` then writes the labelled frames as image folders."""
    db = new_db()
    with labelling(e2e, digits, tmp_path, "pi-door", 40, db=db) as (server, browser, _, first):
        seen = [first]
        about = browser.eval("document.getElementById('frame-about').textContent")
        assert about.startswith("every: called ") and ", truth 2; frame 0," in about
        browser.press("3")  # the third class: "2"
        seen.append(next_frame(browser, seen[-1]))
        browser.click('#frame-classes button[data-label="0"]')
        seen.append(next_frame(browser, seen[-1]))
        browser.press("n")
        browser.type("seven")
        browser.press("Enter")
        seen.append(next_frame(browser, seen[-1]))
        browser.press("d")
        seen.append(next_frame(browser, seen[-1]))
        assert browser.eval("document.getElementById('frame-counts').textContent") == "(1 new, 3 labelled, 1 discarded)"
        _, listing = server.get("/api/v1/devices/pi-door/frames?state=all")
        jpegs = {f["id"]: server.get(f"/api/v1/frames/{f['id']}.jpg")[1] for f in listing["frames"]}
    assert [(f["id"], f["frame"], f["labelled_as"], f["discarded"]) for f in listing["frames"]] == [
        (seen[0], 0, "2", False),
        (seen[1], 40, "0", False),
        (seen[2], 80, "seven", False),
        (seen[3], 120, None, True),
        (seen[4], 160, None, False),
    ]
    r = edge_cli("frames", "export", "--db", db, "--out", tmp_path / "field")
    assert r.returncode == 0, r.stderr
    assert "new class  seven: 1 frames labelled with a class the model did not know" in r.stdout
    written = {
        p.relative_to(tmp_path / "field").as_posix(): p.read_bytes() for p in (tmp_path / "field").rglob("*.jpg")
    }
    assert written == {
        f"2/{seen[0]}.jpg": jpegs[seen[0]],
        f"0/{seen[1]}.jpg": jpegs[seen[1]],
        f"seven/{seen[2]}.jpg": jpegs[seen[2]],
    }


LATENCY = 250  # ms the browser adds to each request: a field host some way off
# What a person sees as each key goes down, a click lands or a typed class is sent, recorded before the page's own
# handlers run: the frame number the card names, if its image has loaded (else null: nothing to label by eye).
RECORDER = """(() => {
  window.acts = [];
  const seen = () => {
    const image = document.getElementById('frame-image'), card = document.getElementById('frame-card');
    const named = /; frame (\\d+), /.exec(document.getElementById('frame-about').textContent);
    return !card.hidden && image.complete && image.naturalWidth > 0 && named ? Number(named[1]) : null;
  };
  addEventListener('keydown', e => {
    if (e.target.tagName !== 'INPUT' && /^[1-9d]$/.test(e.key)) acts.push([e.key, seen()]);
  }, true);
  addEventListener('click', e => {
    const b = e.target.closest('#frame-classes button, #discard');
    if (b) acts.push([b.id === 'discard' ? 'd' : 'label:' + b.dataset.label, seen()]);
  }, true);
  addEventListener('submit', e => {
    if (e.target.id === 'new-class') acts.push(['label:' + document.getElementById('new-label').value.trim(), seen()]);
  }, true);
  return true;
})()"""


def test_quick_keys_over_a_slow_network_label_only_the_frame_on_screen(e2e, digits, tmp_path):
    """Keys pressed faster than the host answers: each labels the frame on screen as it goes down, or, while a
    label or the next frame is on its way, nothing (the dashboard says it ignored them); the host then holds
    exactly the first label given to each frame seen, and the dashboard's counter is the host's."""
    with labelling(e2e, digits, tmp_path, "pi-gate", 17, LATENCY) as (server, browser, summary, first):
        # The delay is real: a read and a label (of no frame: 404, nothing changed) each wait for it
        took = browser.eval(
            "(async () => { const t0 = performance.now(); await fetch('/healthz'); "
            "const t1 = performance.now(); await fetch('/api/v1/frames/none/label', "
            "{method: 'POST', body: '{}'}); return [t1 - t0, performance.now() - t1]; })()"
        )
        assert min(took) >= LATENCY, took
        browser.wait(RECORDER)
        browser.press("1")  # faster than the host answers
        browser.press("2")
        second = next_frame(browser, first)
        ignored = browser.eval("document.getElementById('frame-wait').textContent")
        browser.press("3")  # the second key once the label is kept but before the next image is in
        time.sleep(1.5 * LATENCY / 1000)
        browser.press("4")
        third = next_frame(browser, second)
        browser.click('#frame-classes button[data-label="0"]')  # a double click
        browser.click('#frame-classes button[data-label="0"]')
        fourth = next_frame(browser, third)
        browser.press("n")
        browser.type("seven")
        browser.press("Enter")
        browser.press("1")
        fifth = next_frame(browser, fourth)
        browser.click("#discard")
        browser.press("d")
        before = next_frame(browser, fifth)
        for i in range(20):  # keys at a steady pace, landing at every point of a label's round trip
            browser.press("1234"[i % 4])
            time.sleep(LATENCY / 2000)
        browser.wait("!document.querySelector('#frame-card[data-busy]')")
        acts = browser.eval("window.acts")
        counter = browser.eval("document.getElementById('frame-counts').textContent")
        _, listing = server.get("/api/v1/devices/pi-gate/frames?state=all")
    labels = summary.labels
    given = {}  # frame number: what the first act on it while it was on screen asked for
    for act, frame in acts:
        if frame is not None and frame not in given:
            given[frame] = "discard" if act == "d" else act[6:] if act.startswith("label:") else labels[int(act) - 1]
    held = {f["frame"]: "discard" if f["discarded"] else f["labelled_as"] for f in listing["frames"]}
    assert {frame: what for frame, what in held.items() if what is not None} == given
    assert [given[f] for f in (0, 17, 34, 51, 68)] == [labels[0], labels[2], "0", "seven", "discard"]
    assert [first, second, third, fourth, fifth, before] == [f["id"] for f in listing["frames"][:6]]
    counts = listing["counts"]
    assert counter == f"({counts['new']} new, {counts['labelled']} labelled, {counts['discarded']} discarded)"
    assert ignored.startswith("1 press ignored")
