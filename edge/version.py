"""What edge is called and which version it is: the one source of both (pyproject.toml reads VERSION)."""
import platform

VERSION = "0.1.0"
DISTRIBUTION = "edge-vision"  # the name on the package index, where "edge" is an unrelated project from 2014


def install_hint(extra: str | None = None) -> str:
    """The pip command that brings `extra` (host, serve, plot), or the device install; and the one that
    works before the distribution is on the package index."""
    named, local = (f"'{DISTRIBUTION}[{extra}]'", f"'.[{extra}]'") if extra else (DISTRIBUTION, ".")
    return f"pip install {named} (in a clone of edge: pip install {local})"


def made_by() -> dict:
    """Which edge on which machine wrote a result file (bundle manifests, bench.json)."""
    return {"edge_version": VERSION, "host": {"python": platform.python_version(), "machine": platform.machine()}}
