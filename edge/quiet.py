"""Keeping the runtimes' start-up chatter out of the user's terminal, and nothing else.

TensorFlow and LiteRT write to file descriptor 2 from C++ (absl logging before it is set up, "failed call
to cuInit" on every machine without a GPU, the converter's "fully_quantize: ..." line, "Created TensorFlow
Lite XNNPACK delegate"), where Python's logging and TF_CPP_MIN_LOG_LEVEL do not reach all of it. Around
the calls that print it, stderr goes through a filter that drops those lines and passes every other one
through: a real warning or error still gets to the user.
"""

import os
import re
import sys
import threading
from contextlib import contextmanager

NOISE = re.compile(
    rb"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"|I\d{4} [\d:. ]+\d+ \S+:\d+\] "  # absl INFO lines: "I0000 00:00:1795614506.933391 8477 file.cc:31] ..."
    rb"|[EW]\d{4} [\d:. ]+\d+ \S+:\d+\] .*(cuInit|CUDA|cuda|GPU|TensorRT)"  # no GPU here: not the user's error
    rb"|fully_quantize: \d+, inference_type: "
    rb"|INFO: Created TensorFlow Lite XNNPACK delegate for CPU\."
    rb"|.*oneDNN custom operations are on"
    rb"|.*This TensorFlow binary is optimized to use available CPU instructions"
    rb"|.*To enable the following instructions: .* in other operations, rebuild TensorFlow"
)


@contextmanager
def quiet_stderr():
    """Drop NOISE lines written to file descriptor 2 (by C++ or Python) while the block runs."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no real stderr (an embedding host): nothing to filter
        yield
        return
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    forwarder = threading.Thread(target=_forward, args=(read_end, saved), name="edge-quiet", daemon=True)
    forwarder.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # the pipe's last writer is gone: the forwarder reads to the end and stops
        forwarder.join()
        os.close(saved)


def _forward(read_end: int, out: int) -> None:
    pending = b""
    with os.fdopen(read_end, "rb", buffering=0) as pipe:
        while chunk := pipe.read(65536):
            lines = (pending + chunk).split(b"\n")
            pending = lines.pop()
            _write(out, lines)
    if pending:
        _write(out, [pending])


def _write(out: int, lines: list[bytes]) -> None:
    kept = b"".join(line + b"\n" for line in lines if not NOISE.match(line))
    if kept:
        os.write(out, kept)
