"""The runtimes' start-up chatter is dropped from stderr; every other line gets through."""

import subprocess
import sys

CODE = r"""
import os
from edge.quiet import quiet_stderr
with quiet_stderr():
    os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n")
    os.write(2, b"I0000 00:00:1795614506.933391    8477 cudart_stub.cc:31] "
                b"Could not find cuda drivers on your machine\n")
    os.write(2, b"E0000 00:00:1795614510.884383    8477 cuda_platform.cc:52] failed call to cuInit: INTERNAL\n")
    os.write(2, b"fully_quantize: 0, inference_type: 6, input_inference_type: UINT8, output_inference_type: UINT8\n")
    os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
    os.write(2, b"E0000 00:00:1795614510.884383    8477 op_kernel.cc:1830] OP_REQUIRES failed: out of memory\n")
    os.write(2, b"a real warning")
os.write(2, b"\nafter\n")
"""


def test_noise_is_dropped_and_real_lines_pass():
    r = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0
    assert r.stderr.splitlines() == [
        "E0000 00:00:1795614510.884383    8477 op_kernel.cc:1830] OP_REQUIRES failed: out of memory",
        "a real warning",
        "",
        "after",
    ]
