"""The dashboard in a real headless browser (Debian's chromium): after a device has reported, the page
shows the device, its latency, FPS and drift over time, and the confusion matrix of its field evaluation; each
device's state, alerts and health figures, charted over time; labelling the frames a device collected."""

import contextlib
import csv
import io
import re
import subprocess
import time
import uuid

import numpy as np
import orjson
import pytest

from edge.collect import CollectOptions
from edge.report import make_report
from edge.reporter import ReportOptions
from edge.runner import RunOptions, run
from edge.server import alerts, store, vitals
from tests.browser import CHROMIUM, Browser
from tests.cli import edge_cli
from tests.reports import window_summary
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
    # latency p50 and p99, FPS, and the health figures this machine keeps: one point a report that has them (a
    # first window shorter than the warm-up, or one with a single frame, has no latency; a series with no point,
    # such as the CPU temperature in a container without a thermal zone, draws no line)
    points = [int(n) for n in re.findall(r'data-points="(\d+)"', dom)]
    timed = sum(r["latency_ms"]["inference"]["p50"] is not None for r in held)
    health = [sum(key in r["health"] for r in held) for key in ("camera_fps", "camera_fps_asked", "cpu_temp_c")]
    levels = [r["drift"]["level"] for r in held]
    assert set(levels) <= {"ok", "watch", "drift"} and "drift" in levels  # one class where four were seen
    fps = sum(r["fps"] is not None for r in held)
    assert points == [timed, timed, fps, *[n for n in health if n], len(held)] and timed >= reports - 1
    assert health[0] == len(held)  # frames read: every report has them
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


@pytest.mark.slow  # labelling's network variant: the labelling test runs it on loopback
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


WINDOW = 60.0  # seconds a report covers: a device is online for two windows (+5 s), longer than the test
HOSTILE = '<img src=x onerror="window.injected = 1">'  # a runtime and a class name, kept by the host as sent
HOT = {
    "throttled_now": ["under-voltage", "throttled"],
    "throttled_since_boot": ["under-voltage"],
    "cpu_percent": 45.6,
    "memory_percent": 30.5,
    "disk_free_mb": 2048.0,
    "disk_percent": 61.0,
    "camera_fps": 29.5,
    "camera_fps_asked": 30.0,
    "uptime_s": 93784.0,  # 1 d 2 h 3 min
    "run_s": 3725.0,
    "restarts": 2,
    "gpu_temp_c": 61.5,  # a figure of a newer device, shown as it came
}


def field_reports(device: str, healths: list, labels=("cat", "dog")) -> list[dict]:
    """A device's reports as `edge run` sends them, one a health (None: none, as an edge before health sent),
    each WINDOW s, the last ending now."""
    summary = window_summary(list(labels), [(0, 0)] * 9 + [(0, 1)])
    run_id, now = uuid.uuid4().hex, time.time()
    made = []
    for i, health in enumerate(healths):
        start = now - WINDOW * (len(healths) - i)
        report = make_report(summary, device, run_id, i, "a" * 64, start, start + WINDOW)
        made.append({**report, **({"health": health} if health is not None else {}), "runtime": HOSTILE})
    return orjson.loads(orjson.dumps(made, option=orjson.OPT_SERIALIZE_NUMPY))


ROWS = """Object.fromEntries([...document.querySelectorAll('#devices tr[data-device]')].map(row => [row.dataset.device,
  Object.fromEntries([...row.cells].map((cell, i) =>
    [document.querySelectorAll('#devices thead th')[i].textContent, cell.textContent]))]))"""
PANEL = """Object.fromEntries([...document.querySelectorAll('#health dd')].map(dd =>
  [dd.dataset.figure, [dd.previousElementSibling.textContent, dd.textContent]]))"""
POINTS = """[...document.querySelectorAll('#camera-chart path, #temperature-chart path')].map(p =>
  [p.closest('[id]').id, p.getAttribute('stroke'), Number(p.dataset.points)])"""


def test_each_device_s_state_alerts_and_health_are_shown_and_charted(tmp_path):
    """Three devices: pi-kitchen online and hot (an overheating alert), its health charted from its reports;
    pi-shed offline (an alert) on a board without a thermal zone; pi-attic late, on an edge that sends no health.
    Figures not sent show as a dash, never 0; what a device sends is shown as text, never read as HTML."""
    db_path = tmp_path / "edge.db"
    db = store.open_db(db_path)
    tokens = {name: store.create_token(db, name) for name in ("pi-attic", "pi-kitchen", "pi-shed")}
    kitchen = [None] + [{**HOT, "cpu_temp_c": c} for c in (70.0, 76.5, 80.5, 83.0)]  # the first from an older edge
    sent = {
        "pi-kitchen": field_reports("pi-kitchen", kitchen, labels=(HOSTILE, "dog")),
        # no thermal zone, no firmware, no camera rate asked; a figure of the wrong kind reads as absent
        "pi-shed": field_reports(
            "pi-shed",
            [{"cpu_percent": ["busy"], "memory_percent": 80.2, "camera_fps": 12.0, "disk_free_mb": 300.4}] * 2,
        ),
        "pi-attic": field_reports("pi-attic", [None]),
    }
    server = Server(db_path).start()
    browser = None
    try:
        for device, made in sent.items():
            assert server.post(made, tokens[device])[0] == 200
        # As if heard from last 200 s ago (past two windows: late) and an hour ago (past five: offline)
        for device, silent in (("pi-attic", 200), ("pi-shed", 3600)):
            db.execute("UPDATE devices SET last_seen = last_seen - ? WHERE device = ?", (silent, device))
        deadline = time.monotonic() + 2 * alerts.TICK + 5
        while time.monotonic() < deadline:  # the host's watcher looks every TICK s
            listed = {d["device"]: d for d in server.get("/api/v1/devices")[1]["devices"]}
            raised = {device: [a["alert"] for a in d["alerts"]] for device, d in listed.items()}
            if raised == {"pi-attic": [], "pi-kitchen": ["overheating"], "pi-shed": ["offline"]}:
                break
            time.sleep(0.2)
        assert raised == {"pi-attic": [], "pi-kitchen": ["overheating"], "pi-shed": ["offline"]}
        assert {device: d["state"] for device, d in listed.items()} == {
            "pi-attic": "late",
            "pi-kitchen": "online",
            "pi-shed": "offline",
        }

        browser = Browser(tmp_path / "profile")
        browser.open(server.url + "/")
        browser.wait("document.body.dataset.loaded && document.querySelectorAll('#devices tr[data-device]').length")
        rows = browser.eval(ROWS)
        browser.click('tr[data-device="pi-kitchen"]')
        browser.wait("document.getElementById('detail-title').textContent.startsWith('pi-kitchen: 5 reports')")
        panel = browser.eval(PANEL)
        points = browser.eval(POINTS)
        colours = browser.eval(
            "[...document.querySelectorAll('#devices tr[data-device] td:nth-child(2)')]"
            ".map(td => getComputedStyle(td).color)"
        )
        hostile = browser.eval(
            "[window.injected, document.querySelectorAll('img:not(#frame-image)').length, "
            "document.querySelector('#per-class tbody td').textContent]"
        )

        # A new report: the next refresh (every 5 s) adds its point and shows its figures; pi-attic is back
        assert server.post(field_reports("pi-kitchen", [{**HOT, "cpu_temp_c": 84.2}]), tokens["pi-kitchen"])[0] == 200
        assert server.post(field_reports("pi-attic", [None]), tokens["pi-attic"])[0] == 200
        browser.wait(
            "document.querySelector('#temperature-chart path').dataset.points === '5' && "
            "document.querySelector('#health [data-figure=cpu_temp_c]').textContent === '84.2 °C' && "
            "document.querySelector('tr[data-device=pi-attic] td[data-state]').textContent === 'online'",
            timeout=15,
        )
    finally:
        if browser:
            browser.close()
        server.stop()
        db.close()

    health = ["state", "alerts", "CPU °C", "camera fps (delivered / asked)", "CPU %", "memory %", "disk free"]
    assert [[rows[d][column] for column in health] for d in ("pi-attic", "pi-kitchen", "pi-shed")] == [
        ["late", "", "—", "—", "—", "—", "—"],
        ["online", "overheating", "83.0", "29.5 / 30.0", "46", "31", "2.0 GB"],
        ["offline", "offline", "—", "12.0 / —", "—", "80", "300 MB"],
    ]
    assert rows["pi-kitchen"]["runtime"] == HOSTILE and rows["pi-kitchen"]["reports"] == "5"
    assert len(set(colours)) == 3  # one colour a state, beside its word
    assert panel.pop("state") == ["state", f"online, reports every {WINDOW:.0f} s"]
    since = panel.pop("alerts")
    assert re.fullmatch(r"overheating since \d+ s ago", since[1]), since
    assert panel == {
        "cpu_temp_c": ["CPU temperature", "83.0 °C"],
        "throttled_now": ["throttled now", "under-voltage, throttled"],
        "throttled_since_boot": ["throttled since boot", "under-voltage"],
        "cpu_percent": ["CPU use", "45.6 %"],
        "memory_percent": ["memory use", "30.5 %"],
        "disk_free_mb": ["disk free", "2.0 GB"],
        "disk_percent": ["disk used", "61.0 %"],
        "camera_fps": ["camera fps delivered", "29.5"],
        "camera_fps_asked": ["camera fps asked", "30.0"],
        "uptime_s": ["up for", "1 d 2 h"],
        "run_s": ["running for", "1 h 2 min"],
        "restarts": ["restarts since boot", "2"],
        "gpu_temp_c": ["gpu_temp_c", "61.50"],
    }
    # One point a report with health (the first, from the older edge, has none): delivered and asked, temperature
    assert points == [
        ["camera-chart", "#2ca02c", 4],
        ["camera-chart", "#7f7f7f", 4],
        ["temperature-chart", "#ff7f0e", 4],
    ]
    assert hostile == [None, 0, HOSTILE]
    assert vitals.LATE * WINDOW + vitals.SLACK < 200 < vitals.OFFLINE * WINDOW + vitals.SLACK < 3600
