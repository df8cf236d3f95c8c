"""The device install: edge's device layers without the host extra. Its site-packages is rebuilt here from
edge's own installed requirements (and theirs, recursively), extras left out, so TensorFlow, Keras and
scikit-learn are not there at all; `edge eval` and `edge run` must work in it and agree with the host."""

import json

from edge.eval.evaluate import evaluate
from tests.device import device_packages, on_device


def test_device_install_has_no_tensorflow(device_site, device_code):
    assert {"numpy", "opencv-python-headless", "click", "ai-edge-litert"} <= device_packages()
    for module in ("tensorflow", "tf_keras", "keras", "sklearn"):
        r = on_device(device_site, "-c", f"import {module}", code=device_code)
        assert r.returncode != 0 and "ModuleNotFoundError" in r.stderr, module


def test_eval_and_run_on_the_device_install(device_site, device_code, e2e, digits, tmp_path):
    host = evaluate(e2e.bundle, digits).report
    r = on_device(
        device_site, "-m", "edge.cli", "eval", e2e.bundle, "--data", str(digits), "--json", "-", code=device_code
    )
    assert r.returncode == 0, r.stderr
    device = json.loads(r.stdout)
    assert device["runtime"].startswith("ai_edge_litert")
    assert device["confusion_matrix"] == host.confusion_matrix and device["accuracy"] == host.accuracy
    r = on_device(
        device_site,
        "-m",
        "edge.cli",
        "run",
        e2e.bundle,
        "--source",
        str(digits / "3"),
        "--truth",
        "3",
        "--json",
        "-",
        code=device_code,
    )
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["frames"] == len(list((digits / "3").iterdir()))
    assert summary["per_class"]["3"]["recall"] == host.per_class["3"]["recall"]
