"""Toolchains: a converter that cannot share edge's host environment, each in its own venv.

Sony's IMX500 converter pins TensorFlow < 2.16, numpy < 2 and Python < 3.12, where edge's host runs TensorFlow
2.16+ and numpy 2; onnx2tf (`edge import` of an ONNX file) pins TensorFlow 2.19 and numpy 1.26, and every other
package it needs, exactly. So each gets a venv of its own (`edge devices toolchain install imx500`), and edge runs
scripts in it as subprocesses, exchanging files: nothing of it is imported into edge's process, nothing of edge's
into it.

A venv is built in a hidden folder beside its place, and renamed there once pip has finished and the marker file
is written: a half-built one is never taken for installed. Venvs are not relocatable, so before the rename the
scripts in its bin/ are pointed at the final path.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from edge.errors import EdgeError, choose

ROOT_VARIABLE = "EDGE_TOOLCHAINS"  # the folder toolchains live in [~/.local/share/edge/toolchains]
MARKER = "edge-toolchain.json"  # written last: a venv without it is not installed
# What the host's environment must not hand the venv: its Python path, and the switch to Keras 2 (tf_keras),
# which the toolchain's TensorFlow would go looking for.
DROPPED = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "TF_USE_LEGACY_KERAS")


@dataclass(frozen=True)
class Toolchain:
    name: str
    title: str
    requirement: str  # what pip installs into the venv, pinned
    python: str  # major.minor the venv is made with
    java: int | None  # the least Java major version its programs run on; None: no Java
    apt_java: str  # the Debian package that brings that Java
    modules: tuple[str, ...]  # imported once installed, to prove it works
    programs: tuple[str, ...]  # commands it installs in the venv's bin/
    approx_gb: float  # what it takes on disk, to say before installing


TOOLCHAINS = {
    t.name: t
    for t in (
        Toolchain(
            "imx500",
            "Sony IMX500 converter (Raspberry Pi AI Camera): MCT + imxconv-tf",
            "edge-mdt[tf]==1.3.0",
            "3.11",
            17,
            "openjdk-17-jre-headless",
            ("model_compression_toolkit", "edgemdt_tpc", "tensorflow"),
            ("imxconv-tf",),
            2.3,
        ),
        Toolchain(
            "onnx2tf",
            "ONNX to TFLite (edge import of .onnx files): onnx2tf, ONNX Runtime, TensorFlow 2.19",
            "onnx2tf==1.29.24",
            "3.11",
            None,
            "",
            ("onnx2tf", "onnxruntime", "onnx", "tensorflow"),
            ("onnx2tf",),
            2.4,
        ),
    )
}


def get_toolchain(name: str) -> Toolchain:
    return TOOLCHAINS[choose("toolchain", name, TOOLCHAINS)]


def root() -> Path:
    given = os.environ.get(ROOT_VARIABLE)
    if given:
        return Path(given)
    data = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data) / "edge" / "toolchains"


def home(toolchain: Toolchain) -> Path:
    return root() / toolchain.name


def install_command(toolchain: Toolchain) -> str:
    return f"edge devices toolchain install {toolchain.name}"


def status(name: str) -> dict:
    """Whether a toolchain is installed, where, and what it holds."""
    toolchain = get_toolchain(name)
    place = home(toolchain)
    marker = _marker(place)
    return {
        "name": toolchain.name,
        "title": toolchain.title,
        "path": str(place),
        "installed": marker is not None,
        "requirement": toolchain.requirement,
        "java": java_version(),
        "java_needed": toolchain.java,
        **(
            {"bytes": marker["bytes"], "packages": marker["packages"], "installed_at": marker["installed_at"]}
            if marker
            else {"install": install_command(toolchain)}
        ),
    }


def _marker(place: Path) -> dict | None:
    try:
        return json.loads((place / MARKER).read_text())
    except (OSError, ValueError):
        return None


def java_version() -> int | None:
    """The major version of `java` on PATH; None without one."""
    program = shutil.which("java")
    if program is None:
        return None
    try:
        r = subprocess.run([program, "-version"], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', r.stderr + r.stdout)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2)) if major == 1 and match.group(2) else major  # "1.8.0" is Java 8


def check_java(toolchain: Toolchain) -> None:
    if toolchain.java is None:
        return
    found = java_version()
    if found is None or found < toolchain.java:
        has = f"Java {found} is" if found else "no java is"
        raise EdgeError(
            f"the {toolchain.name} toolchain runs on Java {toolchain.java} and {has} on PATH: "
            f"sudo apt install {toolchain.apt_java} (or any Java {toolchain.java}+ runtime)"
        )


def find_python(version: str) -> str:
    """A Python of that major.minor: this one if it is, else pythonX.Y on PATH."""
    if f"{sys.version_info.major}.{sys.version_info.minor}" == version:
        return sys.executable
    found = shutil.which(f"python{version}")
    if found is None:
        raise EdgeError(
            f"the toolchain needs Python {version} (its packages are built for it), and there is no "
            f"python{version} on PATH: install it (e.g. pyenv install {version}, or your system's "
            f"python{version} and python{version}-venv packages)"
        )
    return found


def install(name: str, log=None) -> dict:
    """Build the toolchain's venv (nothing to do if it is installed); returns its status with the time taken."""
    log = log or (lambda message: None)
    toolchain = get_toolchain(name)
    place = home(toolchain)
    marker = _marker(place)
    if marker and marker["requirement"] == toolchain.requirement:
        log(f"{toolchain.name} is installed in {place}")
        return {**status(name), "seconds": 0.0, "already": True}
    check_java(toolchain)
    python = find_python(toolchain.python)
    started = time.perf_counter()
    place.parent.mkdir(parents=True, exist_ok=True)
    building = place.with_name(f".{place.name}.building-{os.getpid()}")
    old = place.with_name(f".{place.name}.old-{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    log(
        f"installing the {toolchain.name} toolchain ({toolchain.requirement}, about {toolchain.approx_gb} GB) "
        f"into {place}"
    )
    try:
        _run([python, "-m", "venv", str(building)], log, "making the venv")
        _run(
            [str(building / "bin" / "python"), "-m", "pip", "install", "--progress-bar", "off", toolchain.requirement],
            log,
            f"pip install {toolchain.requirement}",
        )
        _repoint(building, place)
        check = "import importlib, sys; [importlib.import_module(m) for m in sys.argv[1:]]"
        _run([str(building / "bin" / "python"), "-c", check, *toolchain.modules], log, "checking it imports")
        missing = [p for p in toolchain.programs if not (building / "bin" / p).is_file()]
        if missing:
            raise EdgeError(
                f"{toolchain.requirement} installed no {', '.join(missing)}: its packaging changed; "
                "report this to edge with the pip log above"
            )
        size = folder_bytes(building)
        record = {
            "name": toolchain.name,
            "requirement": toolchain.requirement,
            "python": toolchain.python,
            "bytes": size,
            "packages": _versions(building),
            "installed_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "seconds": round(time.perf_counter() - started, 1),
        }
        (building / MARKER).write_text(json.dumps(record, indent=2) + "\n")
        if place.exists():  # an older pin: swapped out only now that its successor is whole
            place.rename(old)
        building.rename(place)
    finally:
        shutil.rmtree(building, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    seconds = round(time.perf_counter() - started, 1)
    log(f"installed {toolchain.name} in {place}: {size / 1e9:.2f} GB in {seconds:.0f} s")
    return {**status(name), "seconds": seconds, "already": False}


def _run(command: list[str], log, what: str) -> None:
    """Run a step of the install, passing pip's progress lines on; EdgeError with its last lines if it fails."""
    log(f"  {what}")

    def show(line: str) -> None:
        if line.startswith(("Collecting ", "Successfully installed")):
            log(f"    {line[:160]}")

    _stream(command, clean_environment(), show, lambda code: f"{what} failed (exit {code}), nothing was installed")


def _repoint(venv: Path, final: Path) -> None:
    """A venv's console scripts and activate files name the folder it was made in: name the final one."""
    for file in (venv / "bin").iterdir():
        if file.is_symlink() or not file.is_file():
            continue
        data = file.read_bytes()
        if str(venv).encode() in data[:100_000]:
            file.write_bytes(data.replace(str(venv).encode(), str(final).encode()))
    config = venv / "pyvenv.cfg"
    config.write_text(config.read_text().replace(str(venv), str(final)))


def _versions(venv: Path) -> dict:
    """The versions of the packages that matter, as the venv's pip has them."""
    r = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "list", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=clean_environment(),
    )
    try:
        listed = {p["name"].lower().replace("_", "-"): p["version"] for p in json.loads(r.stdout)}
    except ValueError:
        return {}
    wanted = (
        *("tensorflow", "numpy", "model-compression-toolkit", "imx500-converter", "edge-mdt-tpc", "edge-mdt"),
        *("onnx2tf", "onnx", "onnxruntime"),
    )
    return {name: listed[name] for name in wanted if name in listed}


def folder_bytes(path: Path) -> int:
    return sum(f.lstat().st_size for f in Path(path).rglob("*") if f.is_file() and not f.is_symlink())


def locate(name: str) -> Path:
    """The installed toolchain's venv, or EdgeError with the one command that installs it."""
    toolchain = get_toolchain(name)
    place = home(toolchain)
    if _marker(place) is None:
        where = f" (${ROOT_VARIABLE} is {root()})" if os.environ.get(ROOT_VARIABLE) else ""
        raise EdgeError(
            f"the {toolchain.name} toolchain is not installed in {place}{where}: "
            f"{install_command(toolchain)} (about {toolchain.approx_gb} GB, a few minutes)"
        )
    check_java(toolchain)
    return place


def clean_environment(venv: Path | None = None) -> dict:
    """The environment a toolchain's process gets: the host's, less what would pull it into edge's Python, with
    the venv's bin/ first on PATH."""
    env = {key: value for key, value in os.environ.items() if key not in DROPPED}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    if venv is not None:
        env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


def run_script(name: str, script: Path, args: list[str], log=None) -> str:
    """Run a standalone script with the toolchain's Python; lines it prints starting with 'progress: ' go to `log`.
    Returns everything it printed (stdout and stderr); EdgeError with the last of it if it fails."""
    log = log or (lambda message: None)
    venv = locate(name)

    def show(line: str) -> None:
        if line.startswith("progress: "):
            log(line.removeprefix("progress: "))

    return "\n".join(
        _stream(
            [str(venv / "bin" / "python"), str(script), *args],
            clean_environment(venv),
            show,
            lambda code: f"{script.name} failed in the {name} toolchain (exit {code})",
        )
    )


def _stream(command: list[str], env: dict, show, failed) -> list[str]:
    """Run `command`, handing each line it prints (stdout and stderr as one stream) to `show` as it comes; returns
    the lines. If it fails, EdgeError: `failed(exit code)` and the last of what it said."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    assert process.stdout is not None  # stdout=PIPE
    lines = []
    for line in process.stdout:
        lines.append(line.rstrip())
        show(lines[-1])
    if process.wait() != 0:
        raise EdgeError(f"{failed(process.returncode)}: {last_words(lines)}")
    return lines


def last_words(lines: list[str]) -> str:
    """What a failed program said last, on one line: its error lines (a Python traceback's last line is one),
    else its last line."""
    said = [line.strip() for line in lines if line.strip()]
    errors = [
        line for line in said if line.startswith(("ERROR", "error:")) or re.match(r"^\w+(Error|Exception):", line)
    ]
    return " | ".join(errors[-3:] or said[-1:])[-600:] or "no output"
