"""The typed results of edge's commands: what edge.convert, quantize, evaluate, bench, run and demo return, and
`to_json()`, what `--json` writes (and bench.json holds). A top-level key of the JSON is a field; a group present
only sometimes (run's "drift", eval's "fingerprint", ...) is None and then left out of the JSON. Nested groups
stay the plain dicts and lists of the JSON (latency, per-class metrics, the manifest's records).

Plain data, no numpy: the device reads them too, and edge.render prints them."""

import copy
from dataclasses import dataclass, field, fields
from typing import Any

SOMETIMES = "left out of the JSON when None"


def sometimes() -> Any:
    """A field for a group present only sometimes: None leaves it out of the JSON."""
    return field(default=None, metadata={SOMETIMES: True})


@dataclass(frozen=True, kw_only=True)
class Result:
    def to_json(self) -> dict:
        """The JSON of the command's --json, keys in the fields' order (a copy: changing it changes no result)."""
        return {
            f.name: _json(getattr(self, f.name))
            for f in fields(self)
            if not (f.metadata.get(SOMETIMES) and getattr(self, f.name) is None)
        }


def _json(value):
    return value.to_json() if isinstance(value, Result) else copy.deepcopy(value)


@dataclass(frozen=True, kw_only=True)
class Metrics(Result):
    """Classification metrics (edge.eval.metrics.report), what `edge eval` and `edge run` both measure."""

    n: int  # images (frames) with a truth
    labels: list[str]
    accuracy: float
    top_k_accuracy: dict[str, float]  # "1", "5", ...: the share whose true class ranked below k
    per_class: dict[str, dict]  # label -> precision, recall, f1, support
    macro: dict[str, float]  # precision, recall, f1 averaged over the classes present
    weighted: dict[str, float]
    micro: dict[str, float]
    confusion_matrix: list[list[int]]  # rows: true class, columns: predicted
    notes: list[str]


@dataclass(frozen=True, kw_only=True)
class EvalResult(Metrics):
    """`edge eval`: the metrics of a model on labelled image folders, its latency and what it is."""

    model: str  # the file that ran
    source: str  # "bundle" or "tflite"
    model_bytes: int
    runtime: str
    delegate: str | None
    threads: int
    data: str
    latency_ms: dict  # first, warmup, runs, batch, mean, p50, p90, p99
    fps: float | None  # images a second at the mean latency
    preprocess_ms: dict  # reading and resizing an image: mean, p50
    skipped: dict  # count, files: [{path, why}]
    input: dict  # size, dtype, range
    batch: int
    fingerprint: str | None = sometimes()  # with --fingerprint: the file the scores were written to


@dataclass(frozen=True, kw_only=True)
class RunResult(Metrics):
    """`edge run`: the field metrics over the frames with a truth, timings, capture, and what was sent."""

    frames: int
    evaluated: int  # frames with a truth (n)
    dropped: int
    failures: int  # failed reads
    reopens: int
    skipped: dict  # a folder's unreadable files: count, files
    fps: float | None  # the pace once running, start-up left out; None for one frame
    seconds: float
    latency_ms: dict  # inference, frame (capture to result): each first, warmup, runs, mean, p50, p90, p99
    top1_mean: float | None
    peak_rss_mb: float
    model: str
    source: str  # the frame source, a URL's password redacted
    model_bytes: int
    runtime: str
    delegate: str | None
    threads: int
    options: dict  # top_k, threshold, smooth, realtime, decode
    model_version: dict | None = sometimes()  # following a version: its model and version number
    model_refused: dict | None = sometimes()  # following: the versions refused, {NAME@VERSION: why}
    drift: dict | None = sometimes()  # with a fingerprint
    source_mode: str | None  # what the camera delivers, when it says
    reader: dict  # jpeg_scale, ms: read, decode, prepare a frame
    collecting: dict | None = sometimes()
    following: dict | None = sometimes()
    reporting: dict | None = sometimes()
    calling: dict | None = sometimes()  # --publish, --webhook: calls made, what each outlet sent


@dataclass(frozen=True, kw_only=True)
class BundleResult(Result):
    """A bundle written (`edge convert`, `edge quantize`): its path and its edge.json."""

    bundle: str
    format_version: int
    created: str
    edge_version: str
    backbone: dict
    labels: list[str]
    input: dict
    output: dict
    quantization: dict  # mode, io_type, ..., operations, budget (int8 through the LiteRT Quantizer, else None)
    sparsity: dict | None
    device: str | None
    edgetpu: dict | None
    metrics: dict  # the exported file against its reference model on the validation images
    warnings: list[str]
    checks: list  # the check images a following device runs the model on
    model: dict  # file, bytes, gzip_bytes, sha256


@dataclass(frozen=True, kw_only=True)
class ConvertResult(BundleResult):
    """`edge convert`: the bundle trained, exported and checked."""

    imx500: dict | None
    fingerprint: dict
    training: dict


@dataclass(frozen=True, kw_only=True)
class QuantizeResult(BundleResult):
    """`edge quantize`: the bundle quantized from a float model, and the error of each operation."""

    fingerprint: dict
    quantized_from: dict
    per_operation: list[dict]


@dataclass(frozen=True, kw_only=True)
class ImportResult(BundleResult):
    """`edge import`: a model trained elsewhere (PyTorch, ONNX), converted and checked against it; with --quantize int8,
    then quantized as `edge quantize` does."""

    fingerprint: dict
    imported_from: dict  # the source file, its converter, the preprocessing put in the graph, the agreement
    quantized_from: dict | None = sometimes()
    per_operation: list[dict] | None = sometimes()


@dataclass(frozen=True, kw_only=True)
class BenchResult(Result):
    """`edge bench`: one row a file or variant (bench.json). "files" compares given files; "variants" the
    exports of one model trained here, which only it has model, input_size, images and training for."""

    kind: str  # "files" or "variants"
    created: str
    edge_version: str
    host: dict
    threads: int | None
    model: str | None = sometimes()
    input_size: int | None = sometimes()
    data: str
    images: dict | None = sometimes()  # train, validation
    agreement_with: str
    training: dict | None = sometimes()
    rows: list[dict]


@dataclass(frozen=True, kw_only=True)
class DemoResult(Result):
    """`edge demo`: the conversion, the evaluation on the scans it never saw, and where they are."""

    convert: ConvertResult
    eval: EvalResult
    test_data: str
