"""The Edge TPU compiler: finding it, running it, and reading what it says.

`edgetpu_compiler -s` prints what it mapped: sizes, on-chip and off-chip parameter memory, subgraphs,
and a table of operators with counts and a status ("Mapped to Edge TPU", or why not). `parse_log`
turns that into the manifest's `edgetpu.compiler` record. Anything not "Mapped to Edge TPU" runs on
the CPU, and only the first Edge TPU subgraph runs on the TPU.
"""

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from edge.errors import EdgeError

COMPILER = "edgetpu_compiler"
MAPPED = "Mapped to Edge TPU"
INSTALL = (
    "edgetpu_compiler runs on x86-64 Debian/Ubuntu only: add Coral's apt repository "
    "(https://coral.ai/docs/edgetpu/compiler/#system-requirements) and 'sudo apt install edgetpu-compiler'"
)
UNITS = {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}


def _bytes(text: str) -> int | None:
    """'3.01MiB' -> bytes; None for a size this parser does not know (the rest of the summary still counts)."""
    match = re.fullmatch(r"([\d.]+)\s*(B|KiB|MiB|GiB)", text.strip())
    return round(float(match.group(1)) * UNITS[match.group(2)]) if match else None


def parse_log(text: str) -> dict:
    """The compiler's summary as numbers; EdgeError if `text` is not its output."""

    def field(label, convert=str):
        match = re.search(rf"^{re.escape(label)}:\s*(.+)$", text, re.MULTILINE)
        return convert(match.group(1).strip()) if match else None

    if "Model compiled successfully" not in text:
        reason = next((line.strip() for line in text.splitlines() if "rror" in line), "no 'compiled successfully'")
        raise EdgeError(f"{COMPILER} did not compile the model: {reason}")
    version = re.search(r"^Edge TPU Compiler version (\S+)", text, re.MULTILINE)
    table = text.split("\nOperator", 1)[1] if "\nOperator" in text else ""  # rows follow the header
    operators = [
        {"op": op, "count": int(count), "status": status.strip()}  # ops may be custom: TFLite_Detection_...
        for op, count, status in re.findall(r"^(\S+)\s+(\d+)\s+(\S.*)$", table, re.MULTILINE)
    ]
    total = field("Total number of operations", int)
    on_tpu = field("Number of operations that will run on Edge TPU", int)
    if on_tpu is None:  # printed only when something is left on the CPU
        on_tpu = sum(o["count"] for o in operators if o["status"] == MAPPED) if operators else total
    on_cpu = field("Number of operations that will run on CPU", int)
    return {
        "version": version.group(1) if version else None,
        "input_bytes": field("Input size", _bytes),
        "output_bytes": field("Output size", _bytes),
        "on_chip_bytes": field("On-chip memory used for caching model parameters", _bytes),
        "on_chip_free_bytes": field("On-chip memory remaining for caching model parameters", _bytes),
        "off_chip_bytes": field("Off-chip memory used for streaming uncached model parameters", _bytes),
        "subgraphs": field("Number of Edge TPU subgraphs", int),
        "operations": total,
        "on_tpu": on_tpu,
        "on_cpu": on_cpu if on_cpu is not None else (total - on_tpu if total is not None and on_tpu is not None else 0),
        "not_mapped": [o for o in operators if o["status"] != MAPPED],
    }


def concerns(summary: dict) -> list[str]:
    """What a user should know from a compile: work left on the CPU, weights streamed from the host."""
    found = []
    if summary["on_cpu"]:
        ops = ", ".join(sorted({o["op"] for o in summary["not_mapped"]})) or "see the operation log"
        found.append(f"{summary['on_cpu']} of {summary['operations']} operations run on the CPU ({ops}): slower")
    if summary["off_chip_bytes"]:
        found.append(
            f"{summary['off_chip_bytes'] / 2**20:.1f} MiB of weights do not fit on the chip and stream from "
            "the host every inference: try a smaller backbone (mobilenetv2, mobilenetv3small, efficientnetb0)"
        )
    if summary["subgraphs"] and summary["subgraphs"] > 1:
        found.append(f"{summary['subgraphs']} Edge TPU subgraphs: only the first runs on the TPU")
    return found


def compile_bundle(path) -> dict:
    """Compile a bundle's model for the Edge TPU and keep it in the bundle (`edge devices compile`, for
    bundles converted where the compiler was missing); returns the manifest's new `edgetpu` record."""
    from edge.bundle import read_bundle, write_bundle
    from edge.devices.profiles import check_model, get_profile

    bundle = read_bundle(path)
    quantization = bundle.manifest.get("quantization", {})
    check_model(get_profile("coral-usb"), quantization.get("mode"), quantization.get("io_type"), str(bundle.path))
    model = bundle.model_path.read_bytes()
    record, compiled = compile_record(model)
    manifest = {k: v for k, v in bundle.manifest.items() if k not in ("format_version", "model")}
    manifest["edgetpu"] = record  # replaces an earlier record: its "not compiled" warning, or an older compile
    return write_bundle(bundle.path, model, manifest, edgetpu=compiled).manifest["edgetpu"]


def compile_record(model: bytes) -> tuple[dict, bytes]:
    """(the manifest's `edgetpu` record: the compiler's summary and what to worry about, the compiled model)."""
    compiled, summary = compile_model(model)
    return {"compiled": True, "compiler": summary, "warnings": concerns(summary)}, compiled


def compile_model(model: bytes, timeout: int = 600) -> tuple[bytes, dict]:
    """(the compiled model, its parsed log). EdgeError with the way to get the compiler if it is missing."""
    program = shutil.which(COMPILER)
    if program is None:
        raise EdgeError(f"{COMPILER} is not on PATH. {INSTALL}")
    with tempfile.TemporaryDirectory() as work:
        source = Path(work) / "model.tflite"
        source.write_bytes(model)
        try:
            r = subprocess.run(
                [program, "-s", "-o", work, str(source)], capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            raise EdgeError(f"{COMPILER} took over {timeout} s; run it by hand: {COMPILER} -s MODEL") from None
        except OSError as e:  # e.g. an x86-64 compiler on an arm64 machine: "Exec format error"
            raise EdgeError(f"{program} does not run here ({e.strerror}). {INSTALL}") from None
        summary = parse_log(r.stdout + r.stderr)
        compiled = Path(work) / "model_edgetpu.tflite"
        if r.returncode != 0 or not compiled.is_file():
            raise EdgeError(f"{COMPILER} failed (exit {r.returncode}): {(r.stderr or r.stdout).strip()[-300:]}")
        return compiled.read_bytes(), summary
