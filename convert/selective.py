"""Selective quantization: the accuracy budget (`--max-drop`) kept, not just reported.

Plain int8 first. Where it is shown to lose images, equalization and bias correction (edge.converter.equalize)
are tried, each kept only where it is shown to call better. If what is left falls more than the budget below the float
model on the validation images (and, by default, the images show it: McNemar's exact test, edge.eval.paired),
the operations that hurt most stay in higher precision (a `FALLBACKS` choice) until the drop holds:

1. Rank. The LiteRT Quantizer's per-tensor error (cosine similarity against the float model's tensors,
   on a few validation images) gives each operation the error it adds to what its inputs carry.
2. Check. The top few, kept higher one at a time, are measured on the validation images plain int8
   gets differently from float (then others, up to CHECK_IMAGES): each alone, and with the operations
   that feed it. The second catches an activation with an outlier channel: its int8 scale is shared by
   all channels, and only keeping both its producer and its consumer higher keeps it out of int8.
3. Keep. The checked sets that helped, most gained per operation first, then the rest by rank: the
   shortest prefix that holds the budget on all the validation images, found by doubling, then halving.
"""

import time
from dataclasses import dataclass, field, replace
from itertools import zip_longest
from typing import Any

import numpy as np

from edge.converter.equalize import correct_bias, equalize, restore_biases
from edge.converter.quantize import (
    FALLBACKS,
    Calibrated,
    calibrate,
    quantize_int8,
    quantizer_errors,
    signature_input,
)
from edge.errors import EdgeError, choose
from edge.eval.evaluate import classify_all
from edge.eval.paired import Paired, judge
from edge.interpreter import UnusableModel, input_detail, make_interpreter, resolve_threads
from edge.preprocess import pixels_to_input
from edge.progress import Log
from edge.quiet import quiet_stderr
from edge.version import cpu_name

TRIED_ALONE = 6  # operations checked one at a time: each costs two quantizations and runs over the check images
CHECK_IMAGES = 100  # at most, for the one-at-a-time checks
RANK_IMAGES = 8  # images the per-tensor error is averaged over
MIN_GAIN = 0.05  # a checked set goes first if it takes this share off the check images' distance from float;
# smaller gains are noise that would push an operation the ranking puts later ahead of one it puts earlier
# int16 activations the quantizer cannot give these; SUB's int16 kernel refuses the scales an in-graph
# preprocessing gives it ("input1_shift <= 0")
NO_INT16 = {"HARD_SWISH", "SQUARED_DIFFERENCE", "SPACE_TO_DEPTH", "SUB"}
CONVERSIONS = {"QUANTIZE", "DEQUANTIZE"}  # already converting between precisions: nothing to keep higher
FLOAT_TOLERANCE = 1e-4  # an equalized float model's scores from the model's own, at most


@dataclass(frozen=True)
class Operation:
    index: int  # in the float model's execution order
    type: str
    scope: str  # its output tensors' names, ";"-joined: how a recipe addresses it
    feeds: tuple[int, ...]  # the operations whose outputs it takes (constants aside)
    outputs: tuple[str, ...]  # its output tensors' names
    inputs: tuple[str, ...]  # its input activations' names (the model's input, or other operations' outputs)
    error: float = 0.0  # 1 - cosine similarity of its output with the float model's, plain int8
    added: float = 0.0  # that error less its inputs' worst: what quantizing this operation adds


@dataclass
class Search:
    model: bytes  # the file chosen: within the budget, or the nearest found
    accuracy: float
    drop: float  # below the float model's accuracy
    met: bool
    kept: dict[int, str]  # operation index -> the fallback it computes in
    operations: list[Operation]
    plain: dict  # plain int8's accuracy, drop and bytes
    plain_model: bytes
    scores: np.ndarray  # the chosen file's, on the images
    verdict: Paired  # the chosen file's drop judged against the budget
    tried: list[dict] = field(default_factory=list)  # each candidate measured
    prepared: dict = field(default_factory=dict)  # equalization and bias correction: what was tried and kept
    seconds: float = 0.0


def check_fallback(fallback: str) -> str:
    return choose("--fallback", fallback, FALLBACKS)


def check_max_drop(max_drop) -> float:
    try:
        value = float(max_drop)
    except (TypeError, ValueError):
        value = float("nan")
    if isinstance(max_drop, (bool, str)) or not 0 <= value <= 1:
        raise EdgeError(f"--max-drop {max_drop} must be between 0 and 1: the accuracy int8 may lose, e.g. 0.01")
    return value


def operations(float_model: bytes) -> list[Operation]:
    """The float model's operations, in execution order, with what feeds each."""
    from ai_edge_quantizer.utils import tfl_flatbuffer_utils as fb

    model = fb.read_model(float_model)
    graph = model.subgraphs[0]
    producer = {t: i for i, op in enumerate(graph.operators) for t in op.outputs}

    def names(tensors) -> tuple[str, ...]:
        return tuple(fb.get_tensor_name(graph.tensors[t]) for t in tensors)

    ops = []
    for i, op in enumerate(graph.operators):
        code = model.operatorCodes[op.opcodeIndex]
        kind = fb.TFL_OP_CODE_TO_NAME.get(max(code.builtinCode, code.deprecatedBuiltinCode))
        ops.append(
            Operation(
                i,
                getattr(kind, "value", f"op {code.builtinCode}"),
                fb.get_op_scope(op, graph.tensors),
                tuple(sorted({producer[t] for t in op.inputs if t in producer})),
                names(op.outputs),
                names(t for t in op.inputs if t in producer or t in graph.inputs),
            )
        )
    return ops


def rank(float_model: bytes, plain: bytes, ops: list[Operation], inputs: np.ndarray) -> list[Operation]:
    """`ops` with the quantizer's per-tensor error of `plain` against `float_model` on `inputs` (float32,
    as the float model's input takes them)."""
    from ai_edge_quantizer import model_validator
    from ai_edge_quantizer.utils.validation_utils import ValidationErrorMetric

    name, _ = signature_input(float_model)
    with quantizer_errors(), quiet_stderr():
        result = model_validator.compare_model(
            float_model,
            plain,
            {"serving_default": [{name: x[None]} for x in inputs]},
            [ValidationErrorMetric.COSINE_SIMILARITY],
            num_threads=2,
        )
    cosine = {tensor: metrics["cosine_similarity"] for tensor, metrics in result.get_all_tensor_results().items()}

    def error(tensors) -> float:
        return max((1.0 - cosine[n] for n in tensors if n in cosine), default=0.0)

    return [replace(op, error=error(op.outputs), added=max(0.0, error(op.outputs) - error(op.inputs))) for op in ops]


class Unrunnable(EdgeError):
    """An int8 file made here that LiteRT's kernels refuse to prepare (an operation's int8 scales out of what
    they take, as an outlier channel's are): the model given is fine, this start of it is not."""


def scores_of(model: bytes, images: np.ndarray, input_range) -> np.ndarray:
    """Scores of every image (uint8 RGB at the input size), as the device computes them."""
    interpreter = make_interpreter(model)
    return np.stack([s for s, _ in classify_all(interpreter, ((x, None) for x in images), input_range)])


def spread(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """Every index once, the classes taking turns (seeded within each): any first few are balanced."""
    rng = np.random.default_rng(seed)
    per_class = [list(rng.permutation(np.flatnonzero(labels == c))) for c in np.unique(labels)]
    return np.array([i for turn in zip_longest(*per_class) for i in turn if i is not None], dtype=np.int64)


@dataclass(frozen=True)
class Task:
    """What the search is given: the calibrated model, the images and labels the budget must hold on, the
    float model's accuracy and scores on them, the budget and the precision to keep operations in."""

    calibrated: Calibrated
    io_type: str
    images: np.ndarray  # uint8 RGB at the input size
    labels: np.ndarray
    input_range: tuple
    reference: float
    float_scores: np.ndarray
    max_drop: float
    fallback: str
    log: Log
    tested: bool  # a drop over the budget counts only where the images show it (edge.eval.paired)
    # a bias-corrected start's float model before the correction: operations kept float take their biases back
    uncorrected: bytes | None = None

    def accuracy(self, scores: np.ndarray) -> float:
        return float(np.mean(scores.argmax(1) == self.labels))

    def verdict(self, scores: np.ndarray) -> Paired:
        """The drop of a file scoring `scores`, judged against the budget."""
        drop = self.reference - self.accuracy(scores)
        return judge(self.labels, self.float_scores.argmax(1), scores.argmax(1), self.max_drop, self.tested, drop)


@dataclass(frozen=True)
class Candidate:
    """A file quantized keeping `kept` higher, and its scores on the images it was measured on."""

    model: bytes
    scores: np.ndarray
    kept: dict[int, str]  # operation index -> the fallback it computes in (float, where int16 was refused)


def keep_budget(
    calibrated: Calibrated,
    io_type: str,
    images: np.ndarray,
    labels: np.ndarray,
    input_range,
    reference: float,
    max_drop: float,
    fallback: str = "float",
    log: Log | None = None,
    float_scores: np.ndarray | None = None,
    tested: bool = True,
    prepare: bool = True,
) -> Search:
    """Quantize `calibrated` to int8, keeping the fewest operations higher that hold its accuracy on
    (images, labels) within `max_drop` of `reference` (the float model's; its scores, if known, in
    `float_scores`); `tested`: a drop over it counts only where the images show it (McNemar's exact test);
    `prepare`: equalization and bias correction tried first (off: the search alone, as benchmarks compare)."""
    started = time.perf_counter()
    if float_scores is None:
        float_scores = scores_of(calibrated.model, images, input_range)
    task = Task(
        calibrated,
        io_type,
        images,
        labels,
        input_range,
        reference,
        float_scores,
        max_drop,
        fallback,
        log or Log(enabled=False),
        tested,
    )
    try:
        search, quantized = _plain_int8(task)
    except Unrunnable as e:
        task, search, quantized = _rescued(task, str(e), prepare)
        prepare = False  # the start is equalized already
    task.log(f"plain int8: {search.verdict.says()}")
    # where plain int8 loses images (shown so, by default: a start is taken only where shown better), equalizing
    # may win them back
    loses = judge(labels, task.float_scores.argmax(1), search.scores.argmax(1), 0.0, tested).over
    if prepare and loses:
        task, search, quantized = _prepare(task, search, quantized)
    if not search.met:
        task.log(f"finding the operations to keep {fallback}")
        try:
            _keep_shortest(task, search, _check(task, search, quantized))
        except Unrunnable as e:
            raise EdgeError(
                f"int8 of this model cannot run with some operations kept {fallback}: LiteRT's int8 kernels refuse "
                f"it ({e}); nothing written: keep the float model (edge convert: --quantize float16 or float32)"
            ) from None
    search.seconds = time.perf_counter() - started
    return search


def _prepare(task: Task, search: Search, quantized: set[int]) -> tuple[Task, Search, set[int]]:
    """Equalized, bias corrected, or both: the start among them and plain int8 whose int8 file loses least on
    the images (`_better`), with what each did in its search's `prepared`."""
    calibrated, inputs = task.calibrated, task.calibrated.inputs
    tried: list[dict[str, Any]] = [{"start": "plain int8", "drop": search.verdict.drop}]
    starts: dict[str, tuple[Calibrated, Candidate]] = {}  # each start, and its plain int8 file and scores
    calls = {"plain int8": search.scores.argmax(1)}  # each start's int8 calls on the images

    def measure(name: str, model: bytes) -> bytes | None:
        """`model`'s plain int8 file, its drop noted in `tried`; None if it cannot run (its int8 scales out of
        what the kernels take: then it is no start)."""
        try:
            calibrated_start = calibrate(model, inputs)
            plain = quantize_int8(calibrated_start, task.io_type)
            scores = scores_of(plain, task.images, task.input_range)
        except EdgeError as e:
            tried.append({"start": name, "drop": None, "error": str(e)})
            return None
        drop = task.verdict(scores).drop
        starts[name], calls[name] = (calibrated_start, Candidate(plain, scores, {})), scores.argmax(1)
        tried.append({"start": name, "drop": drop})
        task.log(f"  {name}: plain int8 drop {drop:.4f}")
        return plain

    corrected, fixed = correct_bias(calibrated.model, search.plain_model, inputs)
    if fixed:
        measure("bias corrected", corrected)
    equalized, pairs, why = _equalized(task)
    if equalized and (plain := measure("equalized", equalized)) is not None:
        both, fixed_both = correct_bias(equalized, plain, inputs)
        if fixed_both:
            measure("equalized + bias corrected", both)
    best, unproven = _better(task, tried, calls)
    search.prepared = {
        "equalized_pairs": pairs,
        "bias_corrected_operations": len(fixed),
        "tried": tried,
        "chosen": None if best is tried[0] else best["start"],
        **({"note": why} if why else {}),
        **({"unproven": unproven} if unproven else {}),
    }
    if best is tried[0]:
        return task, search, quantized
    task.log(f"starting from {best['start']}: plain int8 drop {tried[0]['drop']:.4f} -> {best['drop']:.4f}")
    uncorrected = {"bias corrected": calibrated.model, "equalized + bias corrected": equalized}.get(best["start"])
    calibrated_start, plain_start = starts[best["start"]]
    task = replace(task, calibrated=calibrated_start, uncorrected=uncorrected)
    prepared = search.prepared
    search, quantized = _plain_int8(task, plain_start)
    search.prepared = prepared
    return task, search, quantized


def _equalized(task: Task) -> tuple[bytes | None, list, str | None]:
    """The float model equalized, its pairs, and why not where it is not (None): no pairs, or float scores
    moved more than FLOAT_TOLERANCE on the images."""
    model = task.calibrated.model
    equalized, pairs = equalize(model, task.calibrated.inputs)
    if not pairs:
        return (
            None,
            pairs,
            "no pair of operations to equalize (weighted ones in a row, through ReLU, nothing or a pooling)",
        )
    own = scores_of(model, task.images, task.input_range)
    moved = float(np.abs(scores_of(equalized, task.images, task.input_range) - own).max())
    if moved > FLOAT_TOLERANCE:
        return None, pairs, f"equalizing moved the float scores {moved:.2g}, more than {FLOAT_TOLERANCE:g}: not used"
    return equalized, pairs, None


def _rescued(task: Task, refused: str, prepare: bool) -> tuple[Task, Search, set[int]]:
    """Plain int8 that LiteRT's kernels refuse (`refused`: their words): the equalized model's, where that runs;
    else no int8, said as it is."""
    equalized, pairs, why = _equalized(task) if prepare else (None, [], "equalization off")
    if equalized:
        task.log(f"plain int8 cannot run ({refused}): starting from the equalized model")
        task = replace(task, calibrated=calibrate(equalized, task.calibrated.inputs))
        try:
            search, quantized = _plain_int8(task)
        except Unrunnable:
            why = "equalized, it cannot run either"
        else:
            search.prepared = {
                "equalized_pairs": pairs,
                "bias_corrected_operations": 0,
                "tried": [
                    {"start": "plain int8", "drop": None, "error": refused},
                    {"start": "equalized", "drop": search.verdict.drop},
                ],
                "chosen": "equalized",
            }
            return task, search, quantized
    raise EdgeError(
        f"int8 of this model cannot run: LiteRT's int8 kernels refuse it ({refused}), as they do scales far apart "
        f"such as an outlier channel's, and {why}; nothing written: keep the float model (edge convert: "
        "--quantize float16 or float32)"
    )


def _better(task: Task, tried: list[dict], calls: dict[str, np.ndarray]) -> tuple[dict, str | None]:
    """The start whose int8 file loses least (of equals, the plainer: plain int8 first); by default only where
    the images show it calls better than plain int8 (McNemar's test, as the budget is judged: one image on a
    small set is chance, and a change made for it may lose elsewhere), else plain int8, and why."""
    best = min((t for t in tried if t["drop"] is not None), key=lambda t: t["drop"])
    if best is tried[0] or not task.tested:
        return best, None
    gain = judge(task.labels, calls[best["start"]], calls["plain int8"], 0.0)
    if gain.over:
        return best, None
    return tried[0], (
        f"{best['start']} lost {best['drop']:.4f} against plain int8's {tried[0]['drop']:.4f}, "
        f"{gain.lost - gain.gained} image(s) fewer: not shown better by {gain.n} images (p = {gain.p_value:.2g})"
    )


def _quantize(task: Task, ops: list[Operation], kept: dict[int, str], subset=slice(None)) -> Candidate:
    """Quantize keeping `kept` higher, and score `subset` of the images. An int16 kernel LiteRT refuses
    (SUB refuses some scales) has the candidate kept in float instead."""
    calibrated = task.calibrated
    floats = [ops[i].index for i, how in kept.items() if how == "float"]
    if task.uncorrected and floats:  # a correction for int8 weights an operation kept float does not have
        calibrated = replace(calibrated, model=restore_biases(calibrated.model, task.uncorrected, floats))
    try:
        model = quantize_int8(calibrated, task.io_type, {ops[i].scope: how for i, how in kept.items()})
        try:
            scores = scores_of(model, task.images[subset], task.input_range)
        except UnusableModel as e:
            raise Unrunnable(e.reason) from None
        return Candidate(model, scores, kept)
    except (EdgeError, RuntimeError, ValueError):
        if "int16" not in kept.values():
            raise
        return _quantize(task, ops, dict.fromkeys(kept, "float"), subset)


def _higher(task: Task, ops: list[Operation], indices) -> dict[int, str]:
    """`indices` kept in the fallback, or in float where the quantizer cannot give them int16."""
    return {i: "float" if task.fallback == "int16" and ops[i].type in NO_INT16 else task.fallback for i in indices}


def _plain_int8(task: Task, plain: Candidate | None = None) -> tuple[Search, set[int]]:
    """Plain int8 on every image, with the quantizer's per-operation error; and the candidates: what it
    computes in integers (what the quantizer has no int8 for stays float)."""
    ops = operations(task.calibrated.model)
    plain = plain or _quantize(task, ops, {})  # a start's, where it was measured already
    dtypes = {d["name"]: np.dtype(d["dtype"]) for d in make_interpreter(plain.model).get_tensor_details()}
    quantized = {
        op.index
        for op in ops
        if op.type not in CONVERSIONS
        and any(dtypes.get(name, np.dtype(np.float32)) != np.float32 for name in op.outputs)
    }
    if not quantized:
        raise EdgeError(
            f"none of the model's operations can be quantized to int8 "
            f"({', '.join(sorted({op.type for op in ops}))}): keep it float32"
        )
    detail = input_detail(make_interpreter(task.calibrated.model))
    ops = rank(
        task.calibrated.model,
        plain.model,
        ops,
        pixels_to_input(
            task.images[spread(task.labels)[:RANK_IMAGES]], detail["dtype"], detail["quantization"], task.input_range
        ),
    )
    accuracy, verdict = task.accuracy(plain.scores), task.verdict(plain.scores)
    search = Search(
        plain.model,
        accuracy,
        verdict.drop,
        not verdict.over,
        {},
        ops,
        {"accuracy": accuracy, "drop": verdict.drop, "bytes": len(plain.model)},
        plain.model,
        plain.scores,
        verdict,
    )
    return search, quantized


def _check(task: Task, search: Search, quantized: set[int]) -> list[int]:
    """The order to keep operations higher in: the checked sets that helped, most gained per operation first,
    then the rest by rank. Each check is recorded in `search.tried`."""
    ops, plain_scores = search.operations, search.scores  # plain int8's: nothing is chosen before the checks
    by_rank = sorted((ops[i] for i in quantized), key=lambda op: -op.added)
    order = spread(task.labels)
    changed = plain_scores.argmax(1) != task.float_scores.argmax(1)
    pick = np.concatenate([order[changed[order]], order[~changed[order]]])[:CHECK_IMAGES]
    baseline, helped = _distance(plain_scores[pick], task.float_scores[pick]), []
    for op in by_rank[:TRIED_ALONE]:
        for group in dict.fromkeys([(op.index,), tuple(sorted({op.index, *op.feeds} & quantized))]):
            d = _distance(_quantize(task, ops, _higher(task, ops, group), pick).scores, task.float_scores[pick])
            search.tried.append({"kept": list(group), "check_distance": d})
            if d <= (1 - MIN_GAIN) * baseline:
                helped.append(((d - baseline) / len(group), group))  # the most gained per operation first
    return list(dict.fromkeys([i for _, group in sorted(helped) for i in group] + [op.index for op in by_rank]))


def _distance(scores: np.ndarray, float_scores: np.ndarray) -> float:
    """Mean L1 distance / 2 of scores from float's (total variation, for softmax)."""
    return float(np.abs(scores - float_scores).sum(1).mean() / 2)


def _keep_shortest(task: Task, search: Search, ranked: list[int]) -> None:
    """Make `search` keep the shortest prefix of `ranked` higher that holds the budget on all the images,
    or the nearest measured should none."""
    low, high, found = 0, None, None  # kept counts known over the budget, and within it
    while (k := next_count(low, high, len(ranked))) is not None:
        if candidate := _attempt(task, search, ranked[:k]):
            high, found = k, candidate
        else:
            low = k
    if found:
        _choose(task, search, found)
        search.met = True


def next_count(low: int, high: int | None, total: int) -> int | None:
    """How many to keep higher next, `low` known over the budget and `high` (None until found) within it:
    doubling until one holds, then halving between the two; None when there is nothing left to try."""
    if high is None:
        return min(max(1, 2 * low), total) if low < total else None
    return (low + high) // 2 if high - low > 1 else None


def _attempt(task: Task, search: Search, indices: list[int]) -> Candidate | None:
    """Keep `indices` higher, recorded in `search.tried`: the candidate, if it holds the budget. The nearest
    yet becomes the search's choice, should nothing hold the budget."""
    candidate = _quantize(task, search.operations, _higher(task, search.operations, indices))
    accuracy, verdict = task.accuracy(candidate.scores), task.verdict(candidate.scores)
    search.tried.append({"kept": list(candidate.kept), "accuracy": accuracy})
    task.log(f"  {len(indices)} operation(s) kept {task.fallback}: accuracy {accuracy:.4f}, {verdict.says()}")
    if verdict.drop < search.drop:
        _choose(task, search, candidate)
    return None if verdict.over else candidate


def _choose(task: Task, search: Search, candidate: Candidate) -> None:
    """Make `candidate`, measured on every image, the search's answer."""
    search.verdict = task.verdict(candidate.scores)
    search.model, search.accuracy, search.drop = candidate.model, task.accuracy(candidate.scores), search.verdict.drop
    search.kept, search.scores = candidate.kept, candidate.scores


def latency_cost(
    search: Search, float_model: bytes, images: np.ndarray, input_range, rounds: int = 3, log: Log | None = None
) -> dict | None:
    """p50 ms of the chosen file, plain int8 and float32, in turns (as `edge bench` times them); None when
    nothing was kept higher (the chosen file is plain int8)."""
    from edge.eval.bench import PER_ROUND, time_in_turns

    if not search.kept:
        return None
    files = {"chosen": search.model, "int8": search.plain_model, "float32": float_model}
    rows: dict[str, dict] = {name: {} for name in files}
    time_in_turns(
        rows,
        {name: (make_interpreter(model), images[:PER_ROUND], input_range) for name, model in files.items()},
        rounds,
        log or Log(enabled=False),
    )
    p50 = {name: rows[name]["p50_ms"] for name in files}
    return {
        "p50": p50["chosen"],
        "plain_int8_p50": p50["int8"],
        "float32_p50": p50["float32"],
        "vs_plain_int8": round(p50["chosen"] / p50["int8"], 3),
        "threads": resolve_threads(None),
        "cpu": cpu_name(),
    }


def off_edgetpu(search: Search) -> int:
    """Operations that will run on the CPU beside an Edge TPU: its compiler maps operations up to the
    first it cannot run (anything not int8) and leaves that one and every later one to the CPU."""
    return len(search.operations) - min(search.kept) if search.kept else 0


def per_operation(search: Search) -> list[dict]:
    """The per-operation report: the quantizer's error of plain int8, and what was kept higher."""
    return [
        {
            "index": op.index,
            "type": op.type,
            "scope": op.scope.rstrip(";"),
            "error": round(op.error, 6),
            "added": round(op.added, 6),
            "kept": search.kept.get(op.index),
        }
        for op in search.operations
    ]


def record(search: Search, fallback: str, max_drop: float, latency: dict | None) -> dict:
    """What the manifest and the summary say of the search."""
    return {
        "max_drop": max_drop,
        "met": search.met,
        "fallback": fallback,
        "plain_int8": search.plain,
        "accuracy": search.accuracy,
        "drop": search.drop,
        "verdict": search.verdict.to_json(),
        "prepared": search.prepared,
        "kept": [
            {"index": i, "type": search.operations[i].type, "scope": search.operations[i].scope.rstrip(";"), "as": how}
            for i, how in sorted(search.kept.items())
        ],
        "operations": len(search.operations),
        "bytes": len(search.model),
        "extra_bytes": len(search.model) - search.plain["bytes"],
        "latency_ms": latency,
        "candidates_measured": len(search.tried),
        "seconds": round(search.seconds, 2),
    }
