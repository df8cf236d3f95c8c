"""The interpreter functions: hardware delegates (the Edge TPU) chosen, detected and refused clearly."""

import ctypes
import shutil

import pytest

from edge.errors import EdgeError
from edge.interpreter import DELEGATES, make_interpreter, pick_delegate
from tests.cli import edge_cli


def edgetpu_runtime_installed() -> bool:
    try:
        ctypes.CDLL(DELEGATES["edgetpu"]["library"]["Linux"])
        return True
    except OSError:
        return False


needs_no_edgetpu = pytest.mark.skipif(edgetpu_runtime_installed(), reason="libedgetpu is installed here")


def test_a_compiled_model_implies_the_edge_tpu():
    assert pick_delegate("model_edgetpu.tflite", None) == "edgetpu"
    assert pick_delegate("model.tflite", None) is None
    assert pick_delegate("model.tflite", "edgetpu") == "edgetpu"


def test_unknown_delegate_suggests_the_known_one():
    with pytest.raises(EdgeError, match="did you mean edgetpu"):
        pick_delegate("model.tflite", "edgtpu")


@needs_no_edgetpu
def test_missing_edge_tpu_runtime_says_how_to_install_it(e2e, tmp_path):
    compiled = tmp_path / "digits_edgetpu.tflite"
    shutil.copy(f"{e2e.bundle}/model.tflite", compiled)
    for model, delegate in ((compiled, None), (f"{e2e.bundle}/model.tflite", "edgetpu")):
        with pytest.raises(EdgeError, match=r"libedgetpu\.so\.1 is not installed.*apt install libedgetpu1-std"):
            make_interpreter(model, delegate=delegate)


@needs_no_edgetpu
@pytest.mark.parametrize("command", ["run", "eval"])
def test_cli_delegate_without_the_runtime_is_one_line(e2e, digits, command):
    where = ["--source", digits / "1"] if command == "run" else ["--data", digits]
    r = edge_cli(command, e2e.bundle, *where, "--delegate", "edgetpu")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "--delegate edgetpu: libedgetpu.so.1 is not installed" in r.stderr.strip().splitlines()[-1]
