"""`edge package`: everything a device needs, in one .tar.gz, to go from a fresh OS to `edge run` as a
service: the bundle, edge's device code (no convert/, no TensorFlow) as an installable folder, the
device requirements, a setup script, a systemd unit and a config file.
"""
import io
import json
import re
import tarfile
import time
from importlib.metadata import distribution
from pathlib import Path

import edge
from devices.profiles import check_model, get_profile
from edge.bundle import read_bundle
from edge.errors import EdgeError
from edge.files import check_writable, write_atomic
from edge.report import DEVICE

TEMPLATES = Path(__file__).with_name("templates")
DEVICE_PACKAGES = ("edge", "eval", "devices")  # what runs on the device; convert/ stays on the host


def device_requirements() -> list[str]:
    """edge's own requirements without extras: exactly what `pip install edge` brings."""
    return [r for r in distribution("edge").requires or [] if "extra ==" not in r]


def _fill(template: str, values: dict) -> str:
    text = (TEMPLATES / template).read_text()
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    left = re.findall(r"@[A-Z_]+@", text)
    assert not left, f"{template}: unfilled {left}"  # a template and this table out of step is a bug
    return text


def _conf_value(value: str) -> str:
    """A value for a systemd EnvironmentFile: quoted when it has spaces (a GStreamer pipeline)."""
    if any(c in value for c in '"\\\n'):
        raise EdgeError(f"{value!r}: quotes, backslashes and newlines cannot go into edge.conf")
    return f'"{value}"' if re.search(r"\s", value) else value


def package(bundle_path, device: str, out, source: str = "0", report_to: str = "", device_id: str = "",
            token: str = "", args: str = "", log=None) -> dict:
    """Write the package; returns what went into it."""
    log = log or (lambda message: None)
    profile = get_profile(device)
    bundle = read_bundle(bundle_path)
    out = check_writable(out, "--out")
    if not str(out).endswith((".tar.gz", ".tgz")):
        raise EdgeError(f"--out {out}: give a .tar.gz file name, e.g. pi-kitchen.tar.gz")
    if not report_to.startswith(("http://", "https://")):
        raise EdgeError("--report-to: give the edge serve host's URL, e.g. http://192.168.1.10:8765")
    if not DEVICE.match(device_id):
        raise EdgeError(f"--device-id '{device_id}': letters, digits, '.', '_' and '-', up to 64, e.g. pi-kitchen")
    top = out.name.removesuffix(".tar.gz").removesuffix(".tgz")
    warnings = []
    quantization = bundle.manifest.get("quantization", {})
    check_model(profile, quantization.get("mode"), quantization.get("io_type"), str(bundle.path))
    if profile.delegate == "edgetpu":
        args = f"--delegate edgetpu {args}".strip()
        if bundle.edgetpu_path is None:
            warnings.append(f"{bundle.path} has no model compiled for the Edge TPU: it will run on the CPU. "
                            f"compile it first where edgetpu_compiler is installed: edge devices compile {bundle.path}")
    if profile.threads:
        args = f"--threads {profile.threads} {args}".strip()
    if not token:
        warnings.append(f"no --token: put it in /etc/edge/edge.conf on the device (edge token create {device_id})")

    files = {
        "setup.sh": (_fill("setup.sh", {"DEVICE": profile.name, "ARCH": profile.arch.replace(" or ", " "),
                                        "APT": " ".join(profile.apt), "GROUPS": " ".join(profile.groups),
                                        "EDGETPU": "yes" if profile.delegate == "edgetpu" else "no"}), 0o755),
        "edge-run.service": (_fill("edge-run.service", {"GROUPS": " ".join(profile.groups)}), 0o644),
        "edge.conf": (_fill("edge.conf", {"SOURCE": _conf_value(source), "REPORT_TO": _conf_value(report_to),
                                          "TOKEN": _conf_value(token), "DEVICE_ID": device_id,
                                          "ARGS": _conf_value(args)}), 0o600),
        "requirements.txt": ("".join(f"{r}\n" for r in device_requirements()), 0o644),
        "edge-src/pyproject.toml": (_device_pyproject(), 0o644),
        "README.txt": (_readme(profile, bundle, device_id, out.name, top), 0o644),
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, (text, mode) in files.items():
            _add(tar, f"{top}/{name}", text.encode(), mode)
        for file in sorted(p for p in bundle.path.iterdir() if p.is_file()):
            _add(tar, f"{top}/bundle/{file.name}", file.read_bytes(), 0o644)
        for name in DEVICE_PACKAGES:
            root = Path(__import__(name).__file__).parent
            for file in sorted(root.rglob("*")):
                if file.is_file() and "__pycache__" not in file.parts:
                    _add(tar, f"{top}/edge-src/{name}/{file.relative_to(root)}", file.read_bytes(), 0o644)
    write_atomic(out, buffer.getvalue())
    for warning in warnings:
        log(f"warning: {warning}")
    return {"package": str(out), "bytes": out.stat().st_size, "device": profile.name, "bundle": str(bundle.path),
            "top": top, "warnings": warnings}


def _add(tar: tarfile.TarFile, name: str, data: bytes, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, int(time.time())
    tar.addfile(info, io.BytesIO(data))


def _device_pyproject() -> str:
    requirements = ",\n".join(f"    {json.dumps(r)}" for r in device_requirements())  # a JSON string is a TOML one
    return f"""[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "edge"
version = "{edge.__version__}"
description = "edge, device install: edge run and edge eval, no TensorFlow."
requires-python = ">=3.10"
dependencies = [
{requirements},
]

[project.scripts]
edge = "edge.cli:main"

[tool.setuptools.packages.find]
include = [{", ".join(f'"{p}*"' for p in DEVICE_PACKAGES)}]

[tool.setuptools.package-data]
"edge.server" = ["dashboard.html"]
devices = ["templates/*"]
"""


def _readme(profile, bundle, device_id: str, archive: str, top: str) -> str:
    return f"""edge package for {profile.title} ({profile.name}), device {device_id}
bundle: {bundle.path.name}, {bundle.manifest['backbone']['name']}, {len(bundle.labels)} classes

On the device ({profile.os}, Python {profile.python}):
  tar xzf {archive} && cd {top} && sudo ./setup.sh
Then: journalctl -u edge-run -f          (what it sees)
      sudo nano /etc/edge/edge.conf      (source, host, token, more options), then sudo systemctl restart edge-run
Camera: {profile.camera}
{profile.notes}
"""
