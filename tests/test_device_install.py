"""The device install: `pip install edge` without the host extra. Its site-packages is rebuilt here from
edge's own installed requirements (and theirs, recursively), extras left out, so TensorFlow, Keras and
scikit-learn are not there at all; `edge eval` and `edge run` must work in it and agree with the host."""
import json
import os
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from eval.evaluate import evaluate

REPO = Path(__file__).resolve().parents[1]


def device_packages() -> set[str]:
    """The distributions `pip install edge` pulls in, without extras."""
    wanted = [Requirement(r) for r in distribution("edge").requires]
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


@pytest.fixture(scope="module")
def device_site(tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("device-site")
    for name in device_packages():
        dist = distribution(name)
        for top in {f.parts[0] for f in dist.files or [] if f.parts[0] != ".."}:
            if not (site / top).exists() and dist.locate_file(top).exists():
                (site / top).symlink_to(dist.locate_file(top))
    return site


def on_device(site: Path, *args: str) -> subprocess.CompletedProcess:
    """Python without its site-packages (-S), with only the device packages and this repo on the path."""
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{REPO}", "PYTHONNOUSERSITE": "1"}
    return subprocess.run([sys.executable, "-S", *args], capture_output=True, text=True, env=env, timeout=300,
                          check=False)


def test_device_install_has_no_tensorflow(device_site):
    assert {"numpy", "opencv-python-headless", "click", "ai-edge-litert"} <= device_packages()
    for module in ("tensorflow", "tf_keras", "keras", "sklearn"):
        r = on_device(device_site, "-c", f"import {module}")
        assert r.returncode != 0 and "ModuleNotFoundError" in r.stderr, module


def test_eval_and_run_on_the_device_install(device_site, e2e, digits, tmp_path):
    host = evaluate(e2e["bundle"], digits).report
    r = on_device(device_site, "-m", "edge.cli", "eval", e2e["bundle"], "--data", str(digits), "--json", "-")
    assert r.returncode == 0, r.stderr
    device = json.loads(r.stdout)
    assert device["runtime"].startswith("ai_edge_litert")
    assert device["confusion_matrix"] == host["confusion_matrix"] and device["accuracy"] == host["accuracy"]
    r = on_device(device_site, "-m", "edge.cli", "run", e2e["bundle"], "--source", str(digits / "3"), "--truth", "3",
                  "--json", "-")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["frames"] == len(list((digits / "3").iterdir()))
    assert summary["per_class"]["3"]["recall"] == host["per_class"]["3"]["recall"]
