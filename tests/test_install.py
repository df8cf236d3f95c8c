"""The distribution: built as a wheel and installed into a fresh venv, edge adds one import name, edge,
with convert, eval and devices inside it, under a name of its own on the package index."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from edge.version import DISTRIBUTION, VERSION
from tests.device import new_venv, top_level_names

REPO = Path(__file__).resolve().parents[1]


def test_the_wheel_installs_one_import_name(tmp_path, device_site):
    source = tmp_path / "source"  # the project's files only: no build/ left over from another build
    for folder in ("edge", "convert", "eval", "devices"):
        shutil.copytree(REPO / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    for file in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / file, source / file)
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            tmp_path / "dist",
            source,
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    (wheel,) = (tmp_path / "dist").iterdir()
    assert wheel.name == f"{DISTRIBUTION.replace('-', '_')}-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
    assert {
        "edge/converter/pipeline.py",
        "edge/eval/metrics.py",
        "edge/devices/profiles.py",
        "edge/server/app.py",
        "edge/server/dashboard.html",
        "edge/devices/templates/setup.sh",
    } <= names

    python, site = new_venv(tmp_path / "venv")
    before = top_level_names(site)
    r = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", wheel], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    assert top_level_names(site) - before == {"edge"}
    (site / "device-deps.pth").write_text(f"{device_site}\n")
    r = subprocess.run(
        [
            python,
            "-c",
            "import edge, edge.converter.options, edge.eval.metrics, edge.devices.profiles; "
            "print(edge.__version__, edge.converter.options.__file__)",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    version, where = r.stdout.split()
    assert version == VERSION and Path(where).is_relative_to(site)
    r = subprocess.run([tmp_path / "venv" / "bin" / "edge", "--version"], capture_output=True, text=True)
    assert r.stdout.strip() == f"edge, version {VERSION}"
