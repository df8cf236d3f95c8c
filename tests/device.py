"""A device's Python for tests: a site-packages rebuilt from edge's own installed requirements (and
theirs, recursively), extras left out, so TensorFlow, Keras and scikit-learn are not there at all."""
import os
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from devices.package import device_requirements

REPO = Path(__file__).resolve().parents[1]


def device_packages() -> set[str]:
    """The distributions `pip install edge` pulls in, without extras."""
    wanted = [Requirement(r) for r in device_requirements()]
    seen = set()
    while wanted:
        req = wanted.pop()
        if req.marker and not req.marker.evaluate({"extra": ""}):
            continue
        name = req.name.lower().replace("_", "-")
        if name in seen:
            continue
        seen.add(name)
        try:
            wanted += [Requirement(r) for r in distribution(name).requires or []]
        except PackageNotFoundError:
            pytest.fail(f"{name}, a device dependency, is not installed here")
    return seen


def build_site(site: Path) -> Path:
    """A site-packages folder holding just the device packages (linked from this environment)."""
    for name in device_packages():
        dist = distribution(name)
        for top in {f.parts[0] for f in dist.files or [] if f.parts[0] != ".."}:
            if not (site / top).exists() and dist.locate_file(top).exists():
                (site / top).symlink_to(dist.locate_file(top))
    return site


def on_device(site: Path, *args: str, code: Path = REPO) -> subprocess.CompletedProcess:
    """Python without its site-packages (-S), with only the device packages and edge's code (this repo,
    or where a package installed it) on the path."""
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{code}", "PYTHONNOUSERSITE": "1"}
    return subprocess.run([sys.executable, "-S", *args], capture_output=True, text=True, env=env, timeout=300,
                          check=False)
