"""The Edge TPU compiler's summary, parsed from text in the format `edgetpu_compiler -s` prints, and
a clear refusal where the compiler is not installed (it is not installable here)."""

import shutil

import pytest

from edge.converter.pipeline import sram_warning
from edge.devices.edgetpu import COMPILER, concerns, parse_log
from edge.devices.profiles import get_profile
from edge.errors import EdgeError
from tests.cli import edge_cli

ALL_MAPPED = """Edge TPU Compiler version 16.0.384591198
Started a compilation timeout timer of 180 seconds.

Model compiled successfully in 812 ms.

Input model: model.tflite
Input size: 2.93MiB
Output model: model_edgetpu.tflite
Output size: 3.12MiB
On-chip memory used for caching model parameters: 3.01MiB
On-chip memory remaining for caching model parameters: 4.77MiB
Off-chip memory used for streaming uncached model parameters: 0.00B
Number of Edge TPU subgraphs: 1
Total number of operations: 70
Operation log: model_edgetpu.log

Operator                       Count      Status

ADD                            10         Mapped to Edge TPU
CONV_2D                        35         Mapped to Edge TPU
DEPTHWISE_CONV_2D              17         Mapped to Edge TPU
MEAN                           1          Mapped to Edge TPU
FULLY_CONNECTED                1          Mapped to Edge TPU
SOFTMAX                        1          Mapped to Edge TPU
QUANTIZE                       5          Mapped to Edge TPU
Compilation child process completed within timeout period.
Compilation succeeded!
"""

PARTLY_ON_CPU = """Edge TPU Compiler version 16.0.384591198

Model compiled successfully in 2204 ms.

Input model: model.tflite
Input size: 21.70MiB
Output model: model_edgetpu.tflite
Output size: 22.41MiB
On-chip memory used for caching model parameters: 6.91MiB
On-chip memory remaining for caching model parameters: 512.00B
Off-chip memory used for streaming uncached model parameters: 14.62MiB
Number of Edge TPU subgraphs: 1
Total number of operations: 134
Operation log: model_edgetpu.log

Model successfully compiled but not all operations are supported by the Edge TPU. A percentage of the model will instead run on the CPU, which is slower. If possible, consider updating your model to use only operations supported by the Edge TPU. For details, visit g.co/coral/model-reqs.
Number of operations that will run on Edge TPU: 131
Number of operations that will run on CPU: 3

Operator                       Count      Status

CONV_2D                        80         Mapped to Edge TPU
ADD                            40         Mapped to Edge TPU
MEAN                           1          Mapped to Edge TPU
FULLY_CONNECTED                1          Mapped to Edge TPU
QUANTIZE                       9          Mapped to Edge TPU
SOFTMAX                        1          Operation is otherwise supported, but not mapped due to some unspecified limitation
DEQUANTIZE                     2          Operation is working on an unsupported data type
"""  # noqa: E501 (the compiler's output as it prints it)


def test_a_fully_mapped_model():
    log = parse_log(ALL_MAPPED)
    assert log["version"] == "16.0.384591198"
    assert (log["operations"], log["on_tpu"], log["on_cpu"], log["subgraphs"]) == (70, 70, 0, 1)
    assert log["on_chip_bytes"] == round(3.01 * 2**20) and log["off_chip_bytes"] == 0
    assert log["input_bytes"] == round(2.93 * 2**20) and log["not_mapped"] == []
    assert concerns(log) == []


def test_a_model_partly_on_the_cpu_and_too_big_for_the_chip():
    log = parse_log(PARTLY_ON_CPU)
    assert (log["operations"], log["on_tpu"], log["on_cpu"]) == (134, 131, 3)
    assert log["on_chip_free_bytes"] == 512 and log["off_chip_bytes"] == round(14.62 * 2**20)
    assert [(o["op"], o["count"]) for o in log["not_mapped"]] == [("SOFTMAX", 1), ("DEQUANTIZE", 2)]
    cpu, streamed = concerns(log)
    assert "3 of 134 operations run on the CPU (DEQUANTIZE, SOFTMAX)" in cpu
    assert "14.6 MiB of weights" in streamed and "smaller backbone" in streamed


def test_custom_operators_and_unknown_sizes():
    text = PARTLY_ON_CPU.replace("DEQUANTIZE                     2 ", "TFLite_Detection_PostProcess   2 ").replace(
        "Input size: 21.70MiB", "Input size: 21.70MB"
    )
    summary = parse_log(text)
    assert [o["op"] for o in summary["not_mapped"]] == ["SOFTMAX", "TFLite_Detection_PostProcess"]
    assert summary["input_bytes"] is None and summary["output_bytes"] == round(22.41 * 2**20)


def test_a_failed_compile_is_an_error():
    with pytest.raises(EdgeError, match="did not compile the model: Internal compiler error"):
        parse_log("Edge TPU Compiler version 16.0.384591198\nInternal compiler error. Aborting!\n")


def test_weights_beyond_the_chip_are_warned_before_export():
    coral = get_profile("coral-usb")
    assert "more than fit in the Edge TPU's 8 MB" in sram_warning(22_900_000, coral)  # Xception
    assert sram_warning(7_900_000, coral)  # under 8 MB, but only about 7 MiB cache parameters
    assert sram_warning(5_300_000, coral) is None  # EfficientNetB0
    assert sram_warning(22_900_000, get_profile("rpi5")) is None


@pytest.mark.skipif(shutil.which(COMPILER) is not None, reason="edgetpu_compiler is installed here")
def test_without_the_compiler_it_says_how_to_get_it(e2e):
    r = edge_cli("devices", "compile", e2e.bundle)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "edgetpu_compiler is not on PATH" in r.stderr and "apt install edgetpu-compiler" in r.stderr
