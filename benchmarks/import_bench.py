"""`edge import` on architectures as timm and torchvision ship them: ResNet-18 and MobileNetV3-Small, written
here in PyTorch (no pretrained weights: torchvision and timm do not import beside this torch), trained briefly,
exported with torch.export and imported twice through the CLI, float32 and int8 within a 0.02 budget. For each:
which TFLite operations the float file holds, its size, its agreement with PyTorch, the int8 search's verdict,
accuracy on unseen scans, and p50 latency against our own MobileNetV2 (`edge convert`, int8) at the same input
size, all timed in one `edge bench` run on this CPU. With --onnx, each is also exported to ONNX (opset 18) and
imported through onnx2tf (its toolchain: `edge devices toolchain install onnx2tf`): the two routes side by side.

    python benchmarks/import_bench.py                 # ~5 min on 2 idle cores (12 beside the test suite)
    python benchmarks/import_bench.py --onnx          # and the ONNX route, against ONNX Runtime
    python benchmarks/import_bench.py --epochs 2      # quicker, weaker models

Data: scikit-learn's real digit scans (0-3) at 96 px: 100 a digit train (PyTorch, and MobileNetV2), the next
40 a digit are `--data` of the imports (agreement, calibration, the int8 budget), every later scan (34-43 a
digit) is the unseen test set that only `edge eval` and `edge bench` read.

Models, random init, trained in PyTorch on the training scans normalised as torchvision does (0..1, minus
ImageNet's mean, over its std; NCHW), Adam lr 1e-3, batch 32, --epochs epochs (5 by default: enough for real
decisions, as random weights give near-ties that make agreement meaningless; not for accuracy):
- resnet18: a 7x7 stride-2 stem, max pooling, BasicBlocks [2, 2, 2, 2] of 64-512 channels (batch norm, ReLU,
  1x1 projections where the shape changes), global average pooling, a linear head.
- mobilenetv3small: the paper's table for Small (Howard et al. 2019): a 3x3 hard-swish stem of 16, eleven
  inverted residual blocks (depthwise 3x3/5x5, squeeze-and-excitation with a hard-sigmoid gate, ReLU early and
  hard-swish late), a 1x1 convolution to 576, pooling, 1024 hard-swish, dropout, the head.
- mobilenetv2 (baseline): `edge convert --model mobilenetv2 --weights none --alpha 1.0 --input-size 96`, trained
  by edge (Keras) for --epochs epochs, int8 within the same budget: its latency and size, not its accuracy (from
  scratch in 5 epochs it stays near guessing, hence --allow-weak).

Test accuracy: the float files' from `edge bench`, the int8 files' from `edge eval`, both on the unseen scans.

Latency is relative within the run: `edge bench` takes the files in turns (5 rounds of 50 images) with all
cores; another process on the machine slows all of them alike.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from tests.torch_models import fit, tensors

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIZE = 96
DIGITS = (0, 1, 2, 3)
MAX_DROP = 0.02
MODELS = ("resnet18", "mobilenetv3small")


# The architectures, random init -----------------------------------------------------------------------------------


def rounded(channels: float, step: int = 8) -> int:
    """`channels` to a multiple of `step`, never more than 10% under it (MobileNets' rule for widths)."""
    out = max(step, int(channels + step / 2) // step * step)
    return out + step if out < 0.9 * channels else out


def resnet18(classes: int):
    import torch
    from torch import nn

    class Basic(nn.Module):
        """Two 3x3 convolutions with batch norm, added to the input (projected by a 1x1 where its shape changes)."""

        def __init__(self, cin: int, cout: int, stride: int):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.relu = nn.ReLU(inplace=True)
            self.shortcut = (
                nn.Identity()
                if stride == 1 and cin == cout
                else nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
            )

        def forward(self, x):
            y = self.relu(self.bn1(self.conv1(x)))
            return self.relu(self.bn2(self.conv2(y)) + self.shortcut(x))

    stages, cin = [], 64
    for i, width in enumerate((64, 128, 256, 512)):
        stages += [Basic(cin, width, 1 if i == 0 else 2), Basic(width, width, 1)]
        cin = width
    return nn.Sequential(
        nn.Conv2d(3, 64, 7, 2, 3, bias=False),
        nn.BatchNorm2d(64),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2, 1),
        *stages,
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(512, classes),
    ).to(torch.float32)


# MobileNetV3-Small (the paper's table 2): kernel, expansion, out, squeeze-excite, activation, stride
SMALL = (
    (3, 16, 16, True, "relu", 2),
    (3, 72, 24, False, "relu", 2),
    (3, 88, 24, False, "relu", 1),
    (5, 96, 40, True, "hswish", 2),
    (5, 240, 40, True, "hswish", 1),
    (5, 240, 40, True, "hswish", 1),
    (5, 120, 48, True, "hswish", 1),
    (5, 144, 48, True, "hswish", 1),
    (5, 288, 96, True, "hswish", 2),
    (5, 576, 96, True, "hswish", 1),
    (5, 576, 96, True, "hswish", 1),
)


def mobilenetv3small(classes: int):
    import torch
    from torch import nn

    def act(name: str):
        return nn.ReLU(inplace=True) if name == "relu" else nn.Hardswish()

    def conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, activation: str | None = None):
        parts = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
        return parts + ([act(activation)] if activation else [])

    class Excite(nn.Module):
        """Squeeze-and-excitation: pooled channels through a bottleneck to a hard-sigmoid gate on each."""

        def __init__(self, channels: int):
            super().__init__()
            squeezed = rounded(channels / 4)
            self.gate = nn.Sequential(
                nn.AdaptiveAvgPool2d(1),
                nn.Conv2d(channels, squeezed, 1),
                nn.ReLU(inplace=True),
                nn.Conv2d(squeezed, channels, 1),
                nn.Hardsigmoid(),
            )

        def forward(self, x):
            return x * self.gate(x)

    class Inverted(nn.Module):
        """Expand (1x1, where the expansion differs from the input), depthwise kxk, excite, project (1x1, linear);
        the input added where the shape stays."""

        def __init__(self, cin, kernel, expanded, cout, excite, activation, stride):
            super().__init__()
            parts = conv_bn(cin, expanded, 1, activation=activation) if expanded != cin else []
            parts += conv_bn(expanded, expanded, kernel, stride, groups=expanded, activation=activation)
            parts += [Excite(expanded)] if excite else []
            parts += conv_bn(expanded, cout, 1)
            self.body = nn.Sequential(*parts)
            self.residual = stride == 1 and cin == cout

        def forward(self, x):
            return x + self.body(x) if self.residual else self.body(x)

    blocks, cin = [], 16
    for kernel, expanded, cout, excite, activation, stride in SMALL:
        blocks.append(Inverted(cin, kernel, expanded, cout, excite, activation, stride))
        cin = cout
    return nn.Sequential(
        *conv_bn(3, 16, 3, 2, activation="hswish"),
        *blocks,
        *conv_bn(cin, 576, 1, activation="hswish"),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(576, 1024),
        nn.Hardswish(),
        nn.Dropout(0.2),
        nn.Linear(1024, classes),
    ).to(torch.float32)


# Training and export ----------------------------------------------------------------------------------------------


def train(name: str, train_dir: Path, test_dir: Path, epochs: int, seed: int = 0) -> dict:
    import torch

    x, y, classes = tensors(train_dir, SIZE)
    torch.manual_seed(seed)
    model = {"resnet18": resnet18, "mobilenetv3small": mobilenetv3small}[name](len(classes))
    started = time.perf_counter()
    fit(model, x, y, epochs, seed)
    seconds = time.perf_counter() - started
    test_x, test_y, _ = tensors(test_dir, SIZE)
    with torch.no_grad():
        accuracy = float((model(test_x).argmax(1) == test_y).float().mean())
    return {
        "model": model,
        "classes": classes,
        "params": sum(p.numel() for p in model.parameters()),
        "train_seconds": seconds,
        "torch_test_accuracy": accuracy,
    }


def export(model, path: Path) -> Path:
    """An exported program (.pt2: litert-torch's route) or an ONNX file (.onnx, opset 18: onnx2tf's)."""
    import torch

    sample = (torch.zeros(1, 3, SIZE, SIZE),)
    if path.suffix == ".onnx":
        torch.onnx.export(model.eval(), sample, str(path), dynamo=True, opset_version=18)
    else:
        torch.export.save(torch.export.export(model.eval(), sample), str(path))
    return path


# The CLI ----------------------------------------------------------------------------------------------------------


def edge(*args) -> tuple[dict | None, float, str]:
    """`edge ARGS --json -`: (its JSON, or None where it failed; wall seconds; its last stderr line)."""
    command = [str(Path(sys.executable).with_name("edge")), *map(str, args), "--json", "-"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    seconds = time.perf_counter() - started
    said = (done.stderr.strip().splitlines() or [""])[-1]
    if done.returncode != 0:
        print(f"  failed (exit {done.returncode}): {' '.join(command[1:3])}: {said}", flush=True)
        return None, seconds, said
    return json.loads(done.stdout), seconds, said


def operations(bundle: Path) -> dict:
    """The TFLite operations the bundle's file holds ({name: count}), and those whose output stays float."""
    from collections import Counter

    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(bundle / "model.tflite"))
    dtypes = {t["index"]: np.dtype(t["dtype"]) for t in interpreter.get_tensor_details()}
    ops = interpreter._get_ops_details()
    names = Counter(op["op_name"] for op in ops)
    floats = Counter(
        op["op_name"]
        for op in ops
        if op["op_name"] not in ("QUANTIZE", "DEQUANTIZE") and op["outputs"] and dtypes[op["outputs"][0]] == np.float32
    )
    return {"ops": dict(sorted(names.items())), "float_ops": dict(sorted(floats.items()))}


def imported(name: str, program: Path, labels: Path, val_dir: Path, work: Path) -> dict:
    out = {}
    for mode, extra in (("float32", ()), ("int8", ("--quantize", "int8", "--max-drop", MAX_DROP))):
        bundle = work / f"{name}-{mode}"
        print(f"  edge import {name} {mode}", flush=True)
        result, seconds, said = edge("import", program, "--labels", labels, "--data", val_dir, "--out", bundle, *extra)
        if result is None:
            out[mode] = {"failed": said, "wall_seconds": seconds}
            continue
        agreement = result["imported_from"]["agreement"]
        out[mode] = {
            "bundle": bundle,
            "bytes": result["model"]["bytes"],
            "agreement": agreement,
            "operations": result["quantization"]["operations"],
            "budget": result["quantization"].get("budget"),
            "seconds": result["imported_from"]["seconds"],
            "wall_seconds": seconds,
            "warnings": result.get("warnings", []),
            **operations(bundle),
        }
    return out


def baseline_params() -> int:
    """MobileNetV2 as `edge convert` builds it (alpha 1.0, SIZE px, the digits' classes)."""
    from edge.converter.backbones import build_classifier, get_backbone

    built: Any = build_classifier(get_backbone("mobilenetv2"), len(DIGITS), SIZE, "none", 1.0)
    return built.model.count_params()


# The report -------------------------------------------------------------------------------------------------------


def ms(value) -> str:
    return "-" if value is None else f"{value:.2f}"


def score(value) -> str:
    return "-" if value is None else f"{value:.4f}"


def table(rows: list[dict], base_p50: float | None) -> str:
    head = (
        "| model | params | float bytes | int8 bytes | float agreement (top1, max diff) | int8 budget (met, drop) "
        "| test acc float, int8 | float p50 ms | int8 p50 ms | int8 p50 / MobileNetV2 int8 | float file's ops |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        f, q = r.get("float32", {}), r.get("int8", {})
        agree = f.get("agreement")
        budget = q.get("budget") or {}
        drop = budget.get("drop")
        ratio = (
            f"{q['p50'] / base_p50:.2f}x" if q.get("p50") is not None and base_p50 else ("1.00x" if r["base"] else "-")
        )
        lines.append(
            "| "
            + " | ".join(
                [
                    r["name"],
                    f"{r['params'] / 1e6:.2f} M" if r.get("params") else "-",
                    f"{f['bytes']:,}" if f.get("bytes") else "-",
                    f"{q['bytes']:,}" if q.get("bytes") else "-",
                    f"{agree['top1']:.4f}, {agree['max_difference']:.1e}" if agree else "-",
                    f"{budget.get('met')}, {drop:+.4f}" if drop is not None else (str(budget.get("met", "-"))),
                    f"{score(f.get('bench_accuracy'))}, {score(q.get('test_accuracy'))}",
                    ms(f.get("p50")),
                    ms(q.get("p50")),
                    ratio,
                    " ".join(sorted(f.get("ops") or q.get("ops") or {})),
                ]
            )
            + " |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=5, help="training epochs of every model")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (bundles, .pt2 files)")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    parser.add_argument(
        "--onnx",
        action="store_true",
        help="also export each model to ONNX and import it through onnx2tf (its toolchain)",
    )
    args = parser.parse_args()

    from edge.converter.demo import write_digits
    from edge.version import cpu_name

    began = time.perf_counter()
    threads = os.cpu_count()
    print(f"CPU: {cpu_name()}, {threads} threads, load average {os.getloadavg()[0]:.1f}", flush=True)
    temp = None if args.keep else tempfile.TemporaryDirectory()
    work = args.keep or Path(temp.name)  # type: ignore[union-attr]
    work.mkdir(parents=True, exist_ok=True)
    train_dir = write_digits(work / "train", DIGITS, per_class=100, size=SIZE)
    val_dir = write_digits(work / "val", DIGITS, per_class=40, size=SIZE, skip=100)
    test_dir = write_digits(work / "test", DIGITS, per_class=None, size=SIZE, skip=140)
    labels = work / "labels.txt"
    labels.write_text("".join(f"{d}\n" for d in DIGITS))

    rows = []
    for name in args.models.split(","):
        print(f"{name}: training {args.epochs} epochs in PyTorch", flush=True)
        trained = train(name, train_dir, test_dir, args.epochs)
        print(
            f"  {trained['params']:,} parameters, {trained['train_seconds']:.0f} s, PyTorch test accuracy "
            f"{trained['torch_test_accuracy']:.4f}",
            flush=True,
        )
        model = trained.pop("model")
        for suffix, route in ((".pt2", "litert-torch"), (".onnx", "onnx2tf"))[: 2 if args.onnx else 1]:
            program = export(model, work / f"{name}{suffix}")
            found = imported(f"{name}{suffix.replace('.', '-')}", program, labels, val_dir, work)
            rows.append({"name": f"{name} ({suffix}, {route})", "base": False, **trained, **found})

    print(f"mobilenetv2 (baseline): edge convert, {args.epochs} epochs, int8", flush=True)
    base_bundle = work / "mobilenetv2-int8"
    base, base_seconds, _ = edge(
        "convert", "--data", train_dir, "--val", val_dir, "--model", "mobilenetv2", "--weights", "none",
        "--input-size", SIZE, "--alpha", 1.0, "--epochs", args.epochs, "--fine-tune-epochs", 0, "--no-augment",
        "--no-flip", "--quantize", "int8", "--max-drop", MAX_DROP, "--allow-weak", "--out", base_bundle,
    )  # fmt: skip
    base_row: dict[str, Any] = {
        "name": "mobilenetv2 (edge convert)",
        "base": True,
        "params": baseline_params(),
        "float32": {},
    }
    if base is not None:
        base_row["int8"] = {
            "bundle": base_bundle,
            "bytes": base["model"]["bytes"],
            "budget": base["quantization"].get("budget"),
            "operations": base["quantization"]["operations"],
            "wall_seconds": base_seconds,
            **operations(base_bundle),
        }
    rows.append(base_row)

    bundles = [(r, mode) for r in rows for mode in ("float32", "int8") if r.get(mode, {}).get("bundle")]
    print(f"edge bench: {len(bundles)} bundles on the unseen scans, in turns", flush=True)
    bench, _, _ = edge("bench", *(r[mode]["bundle"] for r, mode in bundles), "--data", test_dir, "--out", work)
    if bench is not None:
        for (r, mode), found in zip(bundles, bench["rows"], strict=True):
            r[mode].update(p50=found["p50_ms"], bench_accuracy=found["accuracy"], bench_status=found["status"])
    for r, mode in bundles:
        if mode == "int8":
            evaluated, _, _ = edge("eval", r[mode]["bundle"], "--data", test_dir)
            r[mode]["test_accuracy"] = evaluated["accuracy"] if evaluated else None

    base_p50 = base_row.get("int8", {}).get("p50")
    print()
    print(
        f"`edge import` at {SIZE} px, {args.epochs} epochs from random init; int8 --max-drop {MAX_DROP} on the "
        f"{len(DIGITS) * 40} validation scans; accuracy and p50 on the unseen test scans ({cpu_name()}, "
        f"{(bench or {}).get('threads') or threads} threads, one `edge bench` run)\n"
    )
    print(table(rows, base_p50))
    print()
    for r in rows:
        print(f"{r['name']}:")
        if "torch_test_accuracy" in r:
            print(f"  PyTorch test accuracy {r['torch_test_accuracy']:.4f}; trained in {r['train_seconds']:.0f} s")
        for mode in ("float32", "int8"):
            got = r.get(mode)
            if not got:
                continue
            if "failed" in got:
                print(f"  {mode}: FAILED: {got['failed']}")
                continue
            took = (
                f"imported in {got['wall_seconds']:.0f} s"
                if not r["base"]
                else f"converted in {got['wall_seconds']:.0f} s"
            )
            print(f"  {mode} ({took}): dtypes {got['operations']}")
            print(f"    ops: {', '.join(f'{k} {v}' for k, v in got['ops'].items())}")
            if mode == "int8":
                left = ", ".join(f"{k} {v}" for k, v in got["float_ops"].items()) or "none"
                print(f"    left float: {left}")
                budget = got.get("budget") or {}
                if budget:
                    kept = ", ".join(f"{k['type']} as {k['as']}" for k in budget["kept"]) or "nothing"
                    print(
                        f"    search: plain int8 drop {budget['plain_int8'].get('drop')}, kept {kept}, "
                        f"{budget['candidates_measured']} candidates, {budget['seconds']} s"
                    )
            if got.get("warnings"):
                print(f"    warnings: {got['warnings']}")
    print(f"\nwall time {time.perf_counter() - began:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({"cpu": cpu_name(), "rows": rows}, indent=2, default=str))
    if temp is not None:
        temp.cleanup()


if __name__ == "__main__":
    main()
