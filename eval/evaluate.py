"""`edge eval`: run a model (a bundle, or a bare third-party .tflite file) over labelled image folders
and measure what it gets right and how long it takes, with the interpreter code the device runs.

Latency is the model call alone (set the input tensor, invoke, copy the output), timed per invoke;
reading and resizing images is timed apart, as `preprocess_ms`.
"""

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from edge.errors import EdgeError
from edge.eval.accumulator import Accumulator
from edge.eval.latency import latency_stats
from edge.folders import scan
from edge.images import BadImage, read_rgb
from edge.interpreter import input_detail, input_size, invoker, output_detail, set_batch
from edge.model import Model, load_model
from edge.preprocess import output_to_scores, pixels_to_input, resize
from edge.progress import Log
from edge.results import EvalResult

WARMUP = 5  # untimed-for-the-stats runs after the first: enough for caches and thread pools to settle
Tag = TypeVar("Tag")  # what classify_all carries along with each image


@dataclass
class Evaluation:
    report: EvalResult  # its to_json() is what `--json` writes
    y_true: np.ndarray  # class index per evaluated image
    y_pred: np.ndarray
    scores: np.ndarray  # (images, classes): the model's scores, for a fingerprint (edge.eval.fingerprint)
    paths: list[str]  # the evaluated images, in order
    times_ms: list[float]  # one per invoke: the first, the warm-up runs, then one per batch
    model: Model  # the model as loaded, ready to run again


def evaluate(
    model,
    data,
    labels=None,
    input_range=None,
    threads: int | None = None,
    top_k=None,
    batch: int = 1,
    warmup: int = WARMUP,
    delegate: str | None = None,
    log: Log | None = None,
) -> Evaluation:
    """Evaluate `model` (bundle folder or .tflite file) on `data` (one sub-folder of images per class,
    named as the model's labels)."""
    log = log or Log(enabled=False)
    if batch < 1 or warmup < 0:
        raise EdgeError("--batch must be at least 1 and --warmup at least 0")
    target = load_model(model, labels, input_range, threads, delegate)
    interpreter, names = target.interpreter, target.labels
    classes = len(names)
    top_k = default_top_k(classes) if top_k is None else _check_top_k(top_k, classes)
    set_batch(interpreter, batch)
    folder = scan(data, names)
    if not folder.paths:
        raise EdgeError(f"{data} has no images in its class folders: put .jpg/.png files in {data}/<class name>/")
    height, width = input_size(interpreter)

    skipped = list(folder.skipped)
    read_ms, paths = [], []
    bar = log.bar(len(folder.paths), "evaluating")

    def images() -> Iterator[tuple[np.ndarray, int]]:
        for path, label in zip(folder.paths, folder.labels, strict=True):
            start = time.perf_counter()
            try:
                pixels = resize(read_rgb(path), height, width)
            except BadImage as e:
                skipped.append((str(path), str(e)))
                continue
            finally:
                bar.update(1)
            read_ms.append((time.perf_counter() - start) * 1000)
            paths.append(str(path))
            yield pixels, int(label)

    acc = Accumulator(names, top_k)
    y_true, y_pred, rows = [], [], []
    times: list[float] = []
    for scores, label in classify_all(interpreter, images(), target.input_range, batch, warmup, times):
        y_pred.append(acc.add(label, scores))
        y_true.append(label)
        rows.append(scores)
    bar.finish()
    if not acc.n:
        raise EdgeError(
            f"none of the {len(folder.paths)} images in {data} could be read "
            f"(e.g. {skipped[0][0]}: {skipped[0][1]}): check the files"
        )

    latency = latency_stats(times, warmup, batch)
    fps = latency.pop("fps")
    metrics = acc.report()
    if acc.n >= 2 * classes and len(set(y_pred)) == 1:
        hint = "check --input-range: a wrong input range" if target.source == "tflite" else "a broken export"
        metrics["notes"].append(f"every image was classified as {names[y_pred[0]]}: {hint} gives one-class outputs")
    report = EvalResult(
        **target.facts(),
        data=str(data),
        **metrics,
        latency_ms=latency,
        fps=fps,
        preprocess_ms={"mean": float(np.mean(read_ms)), "p50": float(np.median(read_ms))},
        skipped={"count": len(skipped), "files": [{"path": p, "why": w} for p, w in skipped]},
        input={
            "size": [height, width],
            "dtype": np.dtype(input_detail(interpreter)["dtype"]).name,
            "range": list(target.input_range),
        },
        batch=batch,
    )
    return Evaluation(
        report, np.array(y_true), np.array(y_pred), np.array(rows, dtype=np.float32), paths, times, target
    )


def classify_all(
    interpreter,
    items: Iterable[tuple[np.ndarray, Tag]],
    input_range=(0.0, 255.0),
    batch: int = 1,
    warmup: int = 0,
    times: list | None = None,
) -> Iterator[tuple[np.ndarray, Tag]]:
    """For each (uint8 RGB image at the input size, tag), yield (float scores, tag), `batch` images per
    invoke (a short last batch is padded). Appends each invoke's milliseconds to `times`: the first,
    then `warmup` repeats of the first batch (whose results are not yielded twice), then the rest."""
    inp, out = input_detail(interpreter), output_detail(interpreter)
    call = invoker(interpreter)
    times = [] if times is None else times
    first = True
    for chunk in _chunks(items, batch):
        pixels = np.stack([image for image, _ in chunk] + [chunk[-1][0]] * (batch - len(chunk)))
        tensor = pixels_to_input(pixels, inp["dtype"], inp["quantization"], input_range)
        for _ in range(1 + warmup if first else 1):
            start = time.perf_counter()
            raw = call(tensor)
            times.append((time.perf_counter() - start) * 1000)
        first = False
        scores = output_to_scores(raw, out["quantization"]).reshape(batch, -1)
        yield from ((row, tag) for row, (_, tag) in zip(scores, chunk, strict=False))


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def default_top_k(n_classes: int) -> tuple[int, ...]:
    """Top-1, and top-5 when there are at least 5 classes."""
    return (1, 5) if n_classes >= 5 else (1,)


def _check_top_k(top_k, classes: int) -> tuple[int, ...]:
    ks = (top_k,) if isinstance(top_k, int) else tuple(top_k)
    if any(k < 1 or k > classes for k in ks):
        raise EdgeError(f"--top-k {','.join(map(str, ks))}: k must be between 1 and the {classes} classes")
    return tuple(sorted({1, *ks}))
