"""A device's health, read once a report window (not a frame) from what Linux and a Pi's firmware already keep:
CPU temperature and throttling, CPU and memory use, free disk where the outbox lives, the camera's frame rate
against the one asked, uptime, and how often the run was started again since the machine booted.

A figure the board does not keep (no thermal zone in a container, no firmware on a laptop) is left out of the
report, never made up. The files are read under `root` ("/" on a device): a test gives a tree of its own.
"""

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from edge.files import write_atomic

# The firmware's throttled flags (vcgencmd get_throttled): bit -> word; the same bit + 16 is "since boot".
THROTTLE_BITS = {0: "under-voltage", 1: "frequency-capped", 2: "throttled", 3: "soft-temperature-limit"}
CPU_ZONES = ("cpu-thermal", "cpu_thermal", "soc_thermal", "x86_pkg_temp")  # a thermal zone's type, preferred
VCGENCMD_TIMEOUT = 2.0  # seconds
STARTS = "starts.json"  # beside the outbox: this boot's id and how many runs it has seen start


class Health:
    """Reads the health figures each report window; CPU use is measured between two reads."""

    def __init__(self, state: Path | None, asked_fps: float | None, root: Path = Path("/")):
        """`state`: the folder the outbox lives in (its free disk is reported, and the starts are counted
        there; None: neither); `asked_fps`: the camera's frame rate asked or announced."""
        self.state, self.asked_fps, self.root = state, asked_fps, root
        self.restarts = count_start(state, root) if state else None
        self.started = time.monotonic()
        self._cpu = cpu_times(root)
        self._read_frames, self._at = 0, time.monotonic()

    def read(self, frames_read: int) -> dict:
        """The figures now (`frames_read`: the camera's frames so far), those the machine keeps."""
        now, cpu = time.monotonic(), cpu_times(self.root)
        figures: dict = {
            "cpu_temp_c": cpu_temperature(self.root),
            **throttling(self.root),
            "cpu_percent": _percent(self._cpu, cpu),
            "memory_percent": memory_percent(self.root),
            **(disk(self.state) if self.state else {}),
            "camera_fps": round((frames_read - self._read_frames) / (now - self._at), 2) if now > self._at else None,
            "camera_fps_asked": self.asked_fps,
            "uptime_s": uptime(self.root),
            "run_s": round(now - self.started, 1),
            "restarts": self.restarts,
        }
        self._cpu, self._read_frames, self._at = cpu, frames_read, now
        return {key: value for key, value in figures.items() if value is not None}


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError):
        return None


def cpu_temperature(root: Path) -> float | None:
    """The CPU's thermal zone in degrees Celsius (the first zone where none says it is the CPU's)."""
    zones = sorted((root / "sys/class/thermal").glob("thermal_zone*"))
    zones.sort(key=lambda zone: (_read(zone / "type") or "").strip() not in CPU_ZONES)  # stable: CPU's first
    for zone in zones:
        text = _read(zone / "temp")
        try:
            return round(int(text or "") / 1000, 1)
        except ValueError:
            continue
    return None


def throttling(root: Path) -> dict:
    """{"throttled_now": [...], "throttled_since_boot": [...]} from a Pi's firmware (its sysfs file, or
    vcgencmd on the device itself); {} where there is none."""
    text = _read(root / "sys/devices/platform/soc/soc:firmware/get_throttled")
    if text is None and root == Path("/") and shutil.which("vcgencmd"):
        try:
            done = subprocess.run(
                ["vcgencmd", "get_throttled"], capture_output=True, text=True, timeout=VCGENCMD_TIMEOUT, check=False
            )
            text = done.stdout.partition("=")[2] if done.returncode == 0 else None
        except (OSError, subprocess.TimeoutExpired):
            text = None
    try:
        flags = int((text or "").strip(), 16)
    except ValueError:
        return {}
    return {
        "throttled_now": [word for bit, word in THROTTLE_BITS.items() if flags >> bit & 1],
        "throttled_since_boot": [word for bit, word in THROTTLE_BITS.items() if flags >> (bit + 16) & 1],
    }


def cpu_times(root: Path) -> tuple[int, int] | None:
    """(busy, total) jiffies of every CPU since boot, from /proc/stat."""
    line = (_read(root / "proc/stat") or "").partition("\n")[0].split()
    try:
        values = [int(v) for v in line[1:]]
    except ValueError:
        return None
    if line[:1] != ["cpu"] or len(values) < 4:
        return None
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle and iowait
    return sum(values) - idle, sum(values)


def _percent(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    if not before or not after or after[1] <= before[1]:
        return None
    return round(100 * (after[0] - before[0]) / (after[1] - before[1]), 1)


def memory_percent(root: Path) -> float | None:
    """Memory in use (what is not available to a new program), in percent, from /proc/meminfo."""
    fields = {}
    for line in (_read(root / "proc/meminfo") or "").splitlines():
        name, _, rest = line.partition(":")
        fields[name] = rest.split()[0] if rest.split() else ""
    try:
        total, available = int(fields["MemTotal"]), int(fields["MemAvailable"])
    except (KeyError, ValueError):
        return None
    return round(100 * (total - available) / total, 1) if total > 0 else None


def disk(folder: Path) -> dict:
    """Free space where `folder` is (or would be): {"disk_free_mb", "disk_percent"}; {} if it cannot be read."""
    path = Path(folder).expanduser()
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        usage = shutil.disk_usage(path)
    except OSError:
        return {}
    return {
        "disk_free_mb": round(usage.free / 2**20, 1),
        "disk_percent": round(100 * usage.used / usage.total, 1) if usage.total else None,
    }


def uptime(root: Path) -> float | None:
    try:
        return round(float((_read(root / "proc/uptime") or "").split()[0]), 1)
    except (ValueError, IndexError):
        return None


def count_start(folder: Path, root: Path) -> int | None:
    """Count this start in `folder` (its starts.json): how many times a run started before it since the
    machine booted (a service restarted after a crash, or by a swap to a model that needs a restart). None
    where it cannot be kept (a folder not writable) or the boot cannot be told apart."""
    boot = (_read(root / "proc/sys/kernel/random/boot_id") or "").strip()
    if not boot:
        return None
    path = Path(folder).expanduser() / STARTS
    try:
        held = json.loads(path.read_text())
        starts = held["starts"] if held.get("boot") == boot and isinstance(held.get("starts"), int) else 0
    except (OSError, ValueError, AttributeError, KeyError):
        starts = 0
    try:
        os.makedirs(path.parent, exist_ok=True)
        write_atomic(path, json.dumps({"boot": boot, "starts": starts + 1}).encode())
    except OSError:
        return None
    return starts
