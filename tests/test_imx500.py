"""The Raspberry Pi AI Camera (IMX500): the profile, the model handed to Sony's toolchain, the manifest's record of
the converter's report, the package for the Pi, and the refusals where the toolchain, picamera2 or the network
file is missing. The conversion itself needs the imx500 toolchain (2.3 GB): that is the slow test at the end."""

import json
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

import edge
from edge.bundle import model_facts, read_bundle
from edge.capture import parse_source
from edge.converter.pipeline import sram_warning
from edge.devices.imx500 import PACKER, memory_report, memory_warnings, size
from edge.devices.profiles import IMX500_MEMORY_MB, PROFILES, get_profile
from edge.devices.toolchains import ROOT_VARIABLE
from edge.errors import EdgeError
from edge.images import read_rgb
from tests.bundles import E2E_OPTIONS, rewritten
from tests.cli import edge_cli

# What imxconv-tf 3.18.2 wrote for MobileNetV2 (alpha 0.35, 96 px, 4 classes) on this machine.
MEMORY_REPORT = {
    "Memory Report": {
        "Name": "network",
        "Runtime Memory Physical Size": "220.00KB",
        "Model Memory Physical Size": "566.41KB",
        "Reserved Memory": "1.00KB",
        "Memory Usage": "787.41KB",
        "Total Memory Available On Chip": "8.00MB",
        "Memory Utilization": "10%",
        "Fit In Chip": True,
        "Input Persistent": True,
        "Networks": [
            {
                "Hash": "network",
                "Name": "network",
                "Runtime Memory Physical Size": "220.00KB",
                "Model Memory Physical Size": "566.41KB",
                "Input Persistence Cost": "31.00KB",
            }
        ],
    }
}
REPORT_ARGS = ("--report-to", "http://h:8765", "--device-id", "cam-1", "--token", "t")


def test_the_profile():
    p = PROFILES["rpi-ai-camera"]
    assert p.compiler == "imxconv-tf" and p.delegate is None and not p.requires_int8
    assert {"python3-picamera2", "imx500-all", "imx500-tools"} <= set(p.apt) and "video" in p.groups
    assert "Not yet run on an AI Camera" in p.notes
    r = edge_cli("devices", "show", "rpi-ai-camera")
    assert r.returncode == 0 and "compiled by imxconv-tf" in r.stdout


def test_the_memory_report_as_numbers():
    memory = memory_report(MEMORY_REPORT)
    assert memory == {
        "model_bytes": round(566.41 * 1024),
        "runtime_bytes": 220 * 1024,
        "used_bytes": round(787.41 * 1024),
        "chip_bytes": 8 * 2**20,
        "utilization": "10%",
        "fits": True,
        "input_persistent": True,
    }
    assert size("3B") == 3 and size("lots") is None and memory_warnings(memory) == []
    full = memory_report({"Memory Report": {**MEMORY_REPORT["Memory Report"], "Fit In Chip": False}})
    assert "does not fit the sensor's memory" in memory_warnings(full)[0]


def test_a_backbone_too_big_for_the_sensor_is_warned_of_before_conversion():
    camera = get_profile("rpi-ai-camera")
    assert sram_warning(2_300_000, camera) is None  # MobileNetV2
    warning = sram_warning(23_600_000, camera)  # ResNet50
    assert f"in {IMX500_MEMORY_MB} MB" in warning and "mobilenetv3small" in warning


def test_the_model_for_the_toolchain_has_standard_layers_and_computes_the_same(few_digits, tmp_path):
    from edge.converter.layers import Preprocess
    from edge.converter.tfkeras import keras
    from edge.devices.imx500 import sensor_model

    images = np.stack([read_rgb(p) for p in sorted(few_digits.rglob("*.png"))[:8]]).astype(np.float32)
    for mode in Preprocess.MODES:
        pixels = keras.Input((32, 32, 3))
        x = keras.layers.Conv2D(4, 3, name="conv")(Preprocess(mode, name="preprocess")(pixels))
        pooled = keras.layers.GlobalAveragePooling2D()(x)
        model = keras.Model(pixels, keras.layers.Dense(3, activation="softmax")(pooled))
        copy = sensor_model(model)
        assert not any(isinstance(layer, Preprocess) for layer in copy.layers), mode
        np.testing.assert_allclose(copy.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-5)
        copy.save(tmp_path / f"{mode}.h5", save_format="h5")
        assert b"Preprocess" not in (tmp_path / f"{mode}.h5").read_bytes(), mode  # loads without edge


@pytest.fixture(scope="module")
def camera_bundle(e2e, tmp_path_factory):
    """The e2e bundle with an imx500 record and the converter's files, as convert writes them (the network's bytes
    here are a stand-in zip: this tests the bundle and the package, not the converter)."""
    buffer = tmp_path_factory.mktemp("packer") / PACKER
    with zipfile.ZipFile(buffer, "w") as packer:
        packer.writestr("dnnParams.xml", "<dnnParams/>")
    files = {PACKER: buffer.read_bytes(), "network_MemoryReport.json": json.dumps(MEMORY_REPORT).encode()}
    record = {
        "converted": True,
        "packer": model_facts(files[PACKER], PACKER),
        "files": ["network_MemoryReport.json"],
        "memory": memory_report(MEMORY_REPORT),
        "warnings": [],
    }
    return rewritten(
        e2e.bundle, tmp_path_factory.mktemp("cam") / "cam", files=files, device="rpi-ai-camera", imx500=record
    )


def test_the_bundle_keeps_and_checks_the_sensors_network(camera_bundle, tmp_path):
    bundle = read_bundle(camera_bundle.path)
    assert bundle.imx500_path == camera_bundle.path / PACKER and bundle.imx500_path.is_file()
    changed = tmp_path / "changed"
    shutil.copytree(camera_bundle.path, changed)
    (changed / PACKER).write_bytes(b"something else")
    with pytest.raises(EdgeError, match=f"{PACKER} does not match the sha256"):
        read_bundle(changed)


def test_the_package_makes_network_rpk_on_the_pi_and_runs_on_the_sensor(camera_bundle, tmp_path):
    r = edge_cli(
        "package", camera_bundle.path, "--device", "rpi-ai-camera", "--out", tmp_path / "cam.tar.gz", *REPORT_ARGS
    )
    assert r.returncode == 0, r.stderr
    with tarfile.open(tmp_path / "cam.tar.gz") as tar:
        tar.extractall(tmp_path, filter="data")
    packed = tmp_path / "cam"
    names = {str(p.relative_to(packed)) for p in packed.rglob("*") if p.is_file()}
    assert {"bundle/packerOut.zip", "bundle/network_MemoryReport.json", "bundle/model.tflite", "setup.sh"} <= names
    conf = (packed / "edge.conf").read_text()
    assert "EDGE_SOURCE=imx500\n" in conf and 'EDGE_ARGS="--threads 4"' in conf
    setup = (packed / "setup.sh").read_text()
    assert "IMX500=yes" in setup
    assert "apt-get install -y python3-venv python3-picamera2 imx500-all imx500-tools" in setup
    assert '--system-site-packages "$PREFIX/venv"' in setup
    assert 'imx500-package -i "$PREFIX/bundle.new/packerOut.zip"' in setup
    assert subprocess.run(["bash", "-n", packed / "setup.sh"], capture_output=True).returncode == 0
    if shutil.which("shellcheck"):
        r = subprocess.run(["shellcheck", packed / "setup.sh"], capture_output=True, text=True)
        assert r.returncode == 0, r.stdout


def test_a_package_for_the_camera_needs_the_sensors_network(e2e, tmp_path):
    r = edge_cli("package", e2e.bundle, "--device", "rpi-ai-camera", "--out", tmp_path / "cam.tar.gz", *REPORT_ARGS)
    assert r.returncode == 2 and "no network for the AI Camera's sensor (packerOut.zip)" in r.stderr
    assert "edge convert ... --device rpi-ai-camera" in r.stderr and not list(tmp_path.iterdir())


def test_run_on_the_sensor_is_refused_in_one_line_without_its_network_or_picamera2(camera_bundle, tmp_path):
    assert parse_source("imx500").kind == "imx500" and parse_source("imx500:/x/network.rpk").target == "/x/network.rpk"
    r = edge_cli("run", camera_bundle.path, "--source", "imx500", "--max-frames", "1")
    assert r.returncode == 2 and f"{camera_bundle.path / 'network.rpk'} does not exist" in r.stderr
    assert "imx500-package -i" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    rpk = tmp_path / "network.rpk"
    rpk.write_bytes(b"an rpk is made on the Pi by imx500-package")
    r = edge_cli("run", camera_bundle.path, "--source", f"imx500:{rpk}", "--max-frames", "1")
    assert r.returncode == 2 and "--source imx500 needs picamera2 with its IMX500 helper" in r.stderr, r.stderr
    assert "sudo apt install python3-picamera2 imx500-all" in r.stderr and "Traceback" not in r.stderr
    r = edge_cli("run", camera_bundle.path, "--source", "imx500", "--camera-mode", "640x480")
    assert r.returncode == 2 and "--camera-mode is for cameras" in r.stderr


def test_convert_for_the_camera_refuses_before_training(few_digits, tmp_path, monkeypatch, fast):
    monkeypatch.setenv(ROOT_VARIABLE, str(tmp_path / "none-here"))
    r = edge_cli("convert", "--data", few_digits, "--out", tmp_path / "cam", "--device", "rpi-ai-camera")
    assert r.returncode == 2 and "imx500 toolchain is not installed" in r.stderr
    assert "edge devices toolchain install imx500" in r.stderr and "reading images" not in r.stderr
    with pytest.raises(EdgeError, match="leave out qat for device rpi-ai-camera"):
        edge.convert("mobilenetv2", few_digits, tmp_path / "cam", device="rpi-ai-camera", qat=True, **fast)
    assert not (tmp_path / "cam").exists()
    r = edge_cli(
        "quantize",
        tmp_path / "float.tflite",
        "--data",
        few_digits,
        "--out",
        tmp_path / "q",
        "--device",
        "rpi-ai-camera",
    )
    assert r.returncode == 2 and "the AI Camera's converter takes a Keras model" in r.stderr, r.stderr


@pytest.mark.slow
def test_convert_for_the_camera_end_to_end(digits, tmp_path):
    """The real toolchain: reused where $EDGE_TOOLCHAINS (or the default place) has it, else installed (2.3 GB)."""
    edge.install_toolchain("imx500")
    s = edge.convert(
        "mobilenetv2",
        digits,
        tmp_path / "cam",
        device="rpi-ai-camera",
        **E2E_OPTIONS,
    )
    bundle = read_bundle(s.bundle)
    sensor, m = s.imx500, s.metrics
    assert bundle.imx500_path.is_file() and bundle.imx500_path.stat().st_size == sensor["packer"]["bytes"] > 10_000
    assert {"dnnParams.xml", "network_MemoryReport.json"} == set(sensor["files"])
    assert all((bundle.path / name).is_file() for name in sensor["files"])
    assert sensor["memory"]["fits"] and 0 < sensor["memory"]["used_bytes"] < sensor["memory"]["chip_bytes"]
    assert sensor["toolchain"]["imx500-converter"] and sensor["quantization"]["calibration_images"] == 200
    assert m["imx500"]["drop"] <= 0.01 and not m["imx500"]["drop_exceeded"]
    assert abs(m["imx500"]["accuracy"] - m["keras"]["accuracy"]) <= 0.01
    assert s.labels == ["0", "1", "2", "3"] and s.input["shape"][1:3] == [48, 48]
    r = edge_cli("package", bundle.path, "--device", "rpi-ai-camera", "--out", tmp_path / "cam.tar.gz", *REPORT_ARGS)
    assert r.returncode == 0, r.stderr
    with tarfile.open(tmp_path / "cam.tar.gz") as tar:
        packed = {Path(name).name: tar.extractfile(name).read() for name in tar.getnames() if "/bundle/" in name}
    assert packed[PACKER] == bundle.imx500_path.read_bytes()
