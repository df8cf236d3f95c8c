"""Toolchains in venvs of their own: built whole or not at all, found or refused with the command that installs
them, and run with an environment that keeps edge's Python out. The mechanics run for real on a toolchain small
enough for the default suite (pip itself, already in every venv); the imx500 one (2.3 GB) is tests/test_imx500.py's
slow test."""

import json
import os
import subprocess
import sys

import pytest

from edge.devices import toolchains
from edge.devices.toolchains import MARKER, ROOT_VARIABLE, TOOLCHAINS, Toolchain
from edge.errors import EdgeError
from tests.cli import edge_cli

PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
TINY = Toolchain("tiny", "pip alone, for tests", "pip", PYTHON, None, "", ("pip",), ("pip",), 0.02)


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv(ROOT_VARIABLE, str(tmp_path / "toolchains"))
    monkeypatch.setitem(TOOLCHAINS, "tiny", TINY)
    return tmp_path / "toolchains"


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The tiny toolchain, installed once: (its root, what install returned, the lines it logged)."""
    root = tmp_path_factory.mktemp("installed") / "toolchains"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(ROOT_VARIABLE, str(root))
        patch.setitem(TOOLCHAINS, "tiny", TINY)
        lines = []
        yield root, toolchains.install("tiny", log=lines.append), lines


def test_install_builds_beside_and_renames_and_is_idempotent(installed):
    root, result, lines = installed
    place = root / "tiny"
    assert result["installed"] and not result["already"] and result["path"] == str(place)
    assert 0 < toolchains.folder_bytes(place) - result["bytes"] < 1000  # all but the marker, written last
    assert result["bytes"] > 1_000_000 and result["packages"] == {}
    assert [p.name for p in root.iterdir()] == ["tiny"]  # nothing left of the build folder
    assert any("installed tiny" in line and "GB in" in line for line in lines)
    # built elsewhere and renamed: its console scripts name the final place, and run
    pip = place / "bin" / "pip"
    assert pip.read_text().splitlines()[0].startswith(f"#!{place}/bin/python")
    r = subprocess.run([str(pip), "--version"], capture_output=True, text=True, check=True)
    assert str(place) in r.stdout
    marker = json.loads((place / MARKER).read_text())
    assert marker["requirement"] == "pip" and marker["bytes"] == result["bytes"]
    again = toolchains.install("tiny")
    assert again["already"] and again["seconds"] == 0.0


def test_a_half_built_or_unmarked_venv_is_not_installed(root):
    (root / ".tiny.building-123" / "bin").mkdir(parents=True)
    (root / "tiny" / "bin").mkdir(parents=True)  # a venv without the marker, written last
    assert not toolchains.status("tiny")["installed"]
    with pytest.raises(EdgeError, match="tiny toolchain is not installed .*: edge devices toolchain install tiny"):
        toolchains.locate("tiny")


def test_missing_imx500_names_the_command_that_installs_it(root):
    with pytest.raises(EdgeError) as e:
        toolchains.locate("imx500")
    assert "edge devices toolchain install imx500" in str(e.value) and ROOT_VARIABLE in str(e.value)
    r = edge_cli("devices", "toolchain", "list")
    assert r.returncode == 0 and "imx500: not installed" in r.stdout and "toolchain install imx500" in r.stdout
    r = edge_cli("devices", "toolchain", "install", "imx50")
    assert r.returncode == 2 and "did you mean imx500" in r.stderr and "Traceback" not in r.stderr


def test_java_is_checked_before_anything_is_built(root, monkeypatch):
    found = toolchains.java_version()
    monkeypatch.setitem(TOOLCHAINS, "tiny", Toolchain(**{**TINY.__dict__, "java": 99, "apt_java": "openjdk-99-jre"}))
    with pytest.raises(
        EdgeError,
        match=f"runs on Java 99 and {'Java ' + str(found) if found else 'no java'} is on "
        "PATH: sudo apt install openjdk-99-jre",
    ):
        toolchains.install("tiny")
    assert not root.exists() or not any(root.iterdir())


def test_a_failing_step_installs_nothing_and_says_why(root, monkeypatch):
    monkeypatch.setitem(TOOLCHAINS, "tiny", Toolchain(**{**TINY.__dict__, "requirement": "./no-such-project"}))
    with pytest.raises(EdgeError, match="pip install ./no-such-project failed .*nothing was installed"):
        toolchains.install("tiny")
    assert not any(root.iterdir())


def test_scripts_run_in_the_venv_without_the_hosts_python(installed, tmp_path, monkeypatch):
    root = installed[0]
    monkeypatch.setenv("TF_USE_LEGACY_KERAS", "1")
    monkeypatch.setenv("PYTHONPATH", "/somewhere/of/the/host")
    script = tmp_path / "show.py"
    script.write_text(
        "import os, sys\nprint('progress: hello')\n"
        "print(sys.prefix, os.environ.get('TF_USE_LEGACY_KERAS'), os.environ.get('PYTHONPATH'))\n"
        "sys.exit(int(sys.argv[1]))\n"
    )
    lines = []
    out = toolchains.run_script("tiny", script, ["0"], log=lines.append)
    assert lines == ["hello"] and f"{root / 'tiny'} None None" in out
    with pytest.raises(EdgeError, match="show.py failed in the tiny toolchain \\(exit 3\\)"):
        toolchains.run_script("tiny", script, ["3"])


def test_the_default_place_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv(ROOT_VARIABLE, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert toolchains.home(TOOLCHAINS["imx500"]) == tmp_path / "edge" / "toolchains" / "imx500"
    assert os.fspath(toolchains.root()).startswith(str(tmp_path))
