"""What edge is called and which version it is: the one source of both (pyproject.toml reads VERSION)."""

import platform
from pathlib import Path

VERSION = "0.1.0"
DISTRIBUTION = "edge-vision"  # the name on the package index, where "edge" is an unrelated project from 2014


def install_hint(extra: str | None = None) -> str:
    """The pip command that brings `extra` (host, serve, plot), or the device install; and the one that
    works before the distribution is on the package index."""
    named, local = (f"'{DISTRIBUTION}[{extra}]'", f"'.[{extra}]'") if extra else (DISTRIBUTION, ".")
    return f"pip install {named} (in a clone of edge: pip install {local})"


def made_by() -> dict:
    """Which edge on which machine wrote a result file (bundle manifests, bench.json)."""
    return {
        "edge_version": VERSION,
        "host": {"python": platform.python_version(), "machine": platform.machine(), "cpu": cpu_name()},
    }


def cpu_name() -> str:
    """The CPU, named beside every latency: int8 against float32 was 2x on one x86 host and 1.27x on another."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    fields = dict(line.split(":", 1) for line in lines if ":" in line)
    named = {key.strip(): value.strip() for key, value in fields.items()}
    # x86 says "model name"; a Raspberry Pi's 64-bit kernel says only "Model" (the board)
    return named.get("model name") or named.get("Model") or platform.processor() or platform.machine() or "unknown"
