"""A device's Python for tests: a site-packages rebuilt from edge's own installed requirements (and
theirs, recursively), extras left out, so TensorFlow, Keras and scikit-learn are not there at all."""

import os
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from edge.devices.package import device_requirements


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
            source = Path(str(dist.locate_file(top)))  # a file of this environment's
            if not (site / top).exists() and source.exists():
                (site / top).symlink_to(source)
    return site


def unpacked_device_wheel(folder: Path) -> Path:
    import io
    import zipfile

    from edge.devices.package import device_wheel

    zipfile.ZipFile(io.BytesIO(device_wheel()[1])).extractall(folder)
    return folder


def on_device(site: Path, *args: str, code: Path) -> subprocess.CompletedProcess:
    """Python without its site-packages (-S), with only the device packages and edge's device code (or
    where a package installed it) on the path."""
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{code}", "PYTHONNOUSERSITE": "1"}
    # cwd: `python -m` puts the working folder first on the path, and a clone's edge/ must not be found there
    return subprocess.run(
        [sys.executable, "-S", *args], capture_output=True, text=True, env=env, timeout=300, check=False, cwd=code
    )


def new_venv(path: Path) -> tuple[Path, Path]:
    """A fresh venv: (its python, its site-packages)."""
    subprocess.run([sys.executable, "-m", "venv", path], check=True, capture_output=True)
    python = path / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return python, Path(site)


def top_level_names(site: Path) -> set[str]:
    """The import names a site-packages folder offers (packages and modules, not their metadata)."""
    return {
        p.name.removesuffix(".py")
        for p in site.iterdir()
        if p.name != "__pycache__" and not p.name.endswith((".dist-info", ".pth"))
    }
