"""edge.health: the figures read from a tree laid out as a Raspberry Pi's /sys and /proc are (the files' real
formats), left out where a file is missing or unreadable; restarts counted a boot; and every report of a real
`edge run` carries them to the host, which keeps them as sent."""

import json
import os
import sqlite3
from pathlib import Path

import pytest

from edge.health import Health, count_start, throttling
from edge.report import check_report, make_report
from tests.cli import edge_cli
from tests.reports import window_summary
from tests.server import Server, token

PROC_STAT = "cpu  {busy} 0 0 {idle} 0 0 0 0 0 0\ncpu0 1 0 0 1 0 0 0 0 0 0\n"
MEMINFO = "MemTotal:        3884360 kB\nMemFree:          812344 kB\nMemAvailable:    2913270 kB\n"


def pi_tree(root: Path, busy=1000, idle=3000, temp="61234\n", throttled="0x50005\n") -> Path:
    """/sys and /proc as a Pi 4 lays them out: a thermal zone of the CPU (after one of another kind), the
    firmware's throttled flags, /proc's stat, meminfo, uptime and boot id."""
    (root / "sys/class/thermal/thermal_zone0").mkdir(parents=True)
    (root / "sys/class/thermal/thermal_zone0/type").write_text("gpu-thermal\n")
    (root / "sys/class/thermal/thermal_zone0/temp").write_text("48000\n")
    (root / "sys/class/thermal/thermal_zone1").mkdir()
    (root / "sys/class/thermal/thermal_zone1/type").write_text("cpu-thermal\n")
    (root / "sys/class/thermal/thermal_zone1/temp").write_text(temp)
    (root / "sys/devices/platform/soc/soc:firmware").mkdir(parents=True)
    (root / "sys/devices/platform/soc/soc:firmware/get_throttled").write_text(throttled)
    (root / "proc/sys/kernel/random").mkdir(parents=True)
    (root / "proc/sys/kernel/random/boot_id").write_text("0e1f6a1c-4c7b-4a0e-9d67-6b2b6c1f0a11\n")
    (root / "proc/stat").write_text(PROC_STAT.format(busy=busy, idle=idle))
    (root / "proc/meminfo").write_text(MEMINFO)
    (root / "proc/uptime").write_text("86412.53 300211.80\n")
    return root


def test_a_pi_s_figures_are_read_from_its_files(tmp_path):
    root = pi_tree(tmp_path / "pi")
    health = Health(tmp_path / "state", asked_fps=30.0, root=root)
    (root / "proc/stat").write_text(PROC_STAT.format(busy=1300, idle=3700))  # 300 of 1000 jiffies busy since
    figures = health.read(frames_read=0)
    assert {key: figures[key] for key in figures if key not in ("disk_free_mb", "disk_percent", "run_s")} == {
        "cpu_temp_c": 61.2,  # the CPU's zone, not the first
        "throttled_now": ["under-voltage", "throttled"],  # 0x5
        "throttled_since_boot": ["under-voltage", "throttled"],  # 0x50000
        "cpu_percent": 30.0,
        "memory_percent": 25.0,
        "camera_fps": 0.0,  # no frame read since it was made
        "camera_fps_asked": 30.0,
        "uptime_s": 86412.5,
        "restarts": 0,
    }
    assert figures["disk_free_mb"] > 0 and 0 <= figures["disk_percent"] <= 100 and figures["run_s"] >= 0
    assert not check_report_problem(figures)


def check_report_problem(figures) -> str | None:
    """What the host's schema says of a report carrying `figures`."""
    report = make_report(window_summary(["0", "1"], [(0, 0), (1, 1)]), "pi-yard", "run-0001", 0, "a" * 64, 1.8e9, 1.8e9)
    return check_report({**report, "health": figures})


@pytest.mark.parametrize(
    "spoil",
    [
        lambda root: [p.unlink() for p in root.rglob("*") if p.is_file()],  # a board that keeps none of them
        lambda root: [p.write_text("garbage\n") for p in root.rglob("*") if p.is_file()],
        lambda root: [p.write_bytes(b"\xff\xfe\x00") for p in root.rglob("*") if p.is_file()],
        lambda root: [(p.unlink(), p.mkdir()) for p in root.rglob("*") if p.is_file()],  # unreadable: folders
    ],
)
def test_missing_or_unreadable_files_leave_their_figures_out(spoil, tmp_path):
    root = pi_tree(tmp_path / "board")
    spoil(root)
    figures = Health(None, asked_fps=None, root=root).read(frames_read=0)
    assert set(figures) <= {"run_s", "camera_fps"}, figures


def test_throttling_is_absent_off_a_pi(tmp_path):
    assert throttling(tmp_path) == {}
    assert throttling(pi_tree(tmp_path / "ok", throttled="0x0\n")) == {"throttled_now": [], "throttled_since_boot": []}


def test_restarts_are_counted_within_a_boot(tmp_path):
    root = pi_tree(tmp_path / "pi")
    state = tmp_path / "state"
    assert [count_start(state, root) for _ in range(3)] == [0, 1, 2]
    (root / "proc/sys/kernel/random/boot_id").write_text("another-boot\n")
    assert count_start(state, root) == 0
    state_file = state / "starts.json"
    state_file.write_text("{not json")
    assert count_start(state, root) == 0  # a spoilt count starts over
    os.chmod(state, 0o500)
    try:
        if os.geteuid() != 0:  # root writes anyway
            assert count_start(state, root) is None
    finally:
        os.chmod(state, 0o700)


@pytest.mark.parametrize(
    "figures",
    [
        {"cpu_temp_c": "hot"},
        {"cpu_temp_c": float("nan")},
        {"Bad-Key": 1},
        {"throttled_now": ["<script>"]},
        {"throttled_now": ["a"] * 9},
        {f"k{i}": 1 for i in range(33)},
        ["cpu_temp_c", 50],
    ],
)
def test_the_host_refuses_health_it_could_not_chart(figures):
    assert check_report_problem(figures) is not None


def test_every_report_of_a_run_carries_its_health_to_the_host(e2e, digits, tmp_path):
    db = tmp_path / "edge.db"
    with Server(db).start() as server:
        secret = token(db, "pi-yard")
        r = edge_cli(
            "run", e2e.bundle, "--source", Path(digits) / "2", "--report-to", server.url, "--token", secret,
            "--device-id", "pi-yard", "--report-every", "0.05", "--outbox", tmp_path / "state/outbox.db",
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
    with sqlite3.connect(db) as conn:
        bodies = [json.loads(body) for (body,) in conn.execute("SELECT body FROM reports ORDER BY rowid")]
    assert bodies and all("health" in body for body in bodies)
    first = bodies[0]["health"]
    assert first["restarts"] == 0 and first["disk_free_mb"] > 0 and "camera_fps_asked" not in first  # a folder
    assert json.loads((tmp_path / "state/starts.json").read_text())["starts"] == 1
