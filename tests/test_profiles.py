"""The device profile table: every entry names things edge knows, and the CLI shows it."""

import json

from edge.converter.quantize import IO_TYPES, QUANTIZATIONS
from edge.devices.profiles import PROFILES
from edge.interpreter import DELEGATES
from tests.cli import edge_cli


def test_every_profile_is_consistent():
    assert {"rpi4", "rpi5", "coral-usb", "coral-devboard", "linux-x86"} <= set(PROFILES)
    for p in PROFILES.values():
        assert p.delegate is None or p.delegate in DELEGATES, p.name
        assert p.quantize in QUANTIZATIONS and p.io_type in QUANTIZATIONS[p.quantize].io_types, p.name
        assert p.io_type in IO_TYPES
        assert p.threads is None or p.threads >= 1
        # the AI Camera has no published per-model figure edge could hold a field number against
        assert (p.references or p.compiler == "imxconv-tf") and all(r.ms > 0 and r.source for r in p.references), p.name
        assert (p.delegate == "edgetpu") == p.requires_int8 == (p.compiler == "edgetpu_compiler"), p.name
        assert (p.delegate == "edgetpu") == ("libedgetpu1-std" in p.apt), p.name
        assert "video" in p.groups, p.name  # cameras
    assert "plugdev" in PROFILES["coral-usb"].groups and "apex" in PROFILES["coral-devboard"].groups  # TPU nodes


def test_devices_cli():
    r = edge_cli("devices", "list")
    assert r.returncode == 0 and all(name in r.stdout for name in PROFILES)
    r = edge_cli("devices", "show", "coral-usb")
    assert r.returncode == 0 and "edgetpu" in r.stdout and "coral.ai/docs/edgetpu/benchmarks" in r.stdout
    shown = json.loads(edge_cli("devices", "show", "rpi5", "--json").stdout)
    assert shown["name"] == "rpi5" and shown["references"][0]["ms"] == 23.5
    r = edge_cli("devices", "show", "coral")
    assert r.returncode == 2 and "did you mean" in r.stderr and "coral-usb" in r.stderr
