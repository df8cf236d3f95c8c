import json

import pytest

from tests.cli import edge_cli


@pytest.mark.slow
def test_demo_ends_above_095_on_the_scans_it_never_saw_and_says_what_next(tmp_path):
    r = edge_cli("demo", "--out", tmp_path / "demo", "--json", tmp_path / "demo.json")
    assert r.returncode == 0, r.stderr
    result = json.loads((tmp_path / "demo.json").read_text())
    assert result["convert"]["quantization"]["mode"] == "int8" and result["eval"]["n"] == 120
    assert result["eval"]["accuracy"] >= 0.95
    assert "edge convert --data photos/" in r.stdout and "edge run bundles/mine" in r.stdout
