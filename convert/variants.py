"""`edge bench --model`: train one model, export it as each variant an edge user chooses between
(float32, float16, dynamic range, int8, pruned int8, quantization-aware int8), and measure every file
on the validation images with `edge.eval.bench`. A variant that fails gets a row saying why. int8 holds
`edge convert`'s default --max-drop (0.01), keeping operations higher where it must.
"""

from dataclasses import dataclass, replace

from edge.converter.options import ConvertOptions
from edge.converter.pipeline import check, export, fit, read_images
from edge.converter.prune import tflite_sparsity
from edge.errors import EdgeError, choose
from edge.eval.bench import PER_ROUND, ROUNDS, check_rounds, failed, header, row, time_in_turns
from edge.interpreter import make_interpreter, resolve_threads
from edge.progress import Log
from edge.results import BenchResult


@dataclass(frozen=True)
class Variant:
    name: str
    quantize: str
    io_type: str
    pruned: bool = False  # pruned while fine-tuning the shared model further, then exported
    qat: bool = False  # quantization-aware training of the shared model, then exported


VARIANTS = {
    v.name: v
    for v in (
        Variant("float32", "float32", "float32"),
        Variant("float16", "float16", "float32"),
        Variant("dynamic", "dynamic", "float32"),
        Variant("int8", "int8", "uint8"),
        Variant("int8-pruned", "int8", "uint8", pruned=True),
        Variant("int8-qat", "int8", "uint8", qat=True),
    )
}
DEFAULT_VARIANTS = ("float32", "float16", "dynamic", "int8", "int8-pruned")
DEFAULT_SPARSITY = 0.5


def parse_variants(text) -> list[str]:
    names = [v.strip() for v in (text.split(",") if isinstance(text, str) else text) if v.strip()]
    if not names:
        raise EdgeError("--variants is empty: give e.g. float32,int8")
    return list(dict.fromkeys(choose("variant", name, VARIANTS) for name in names))


def bench_variants(
    options: ConvertOptions,
    variants=DEFAULT_VARIANTS,
    threads: int | None = None,
    rounds: int = ROUNDS,
    log: Log | None = None,
) -> BenchResult:
    """Train `options.model` once, export each variant of it and evaluate every file on the validation
    images. Agreement is with the Keras model the file was exported from."""
    log = log or Log(enabled=False)
    resolve_threads(threads)  # a bad value fails now, not after training
    check_rounds(rounds)
    names = parse_variants(variants)
    wants_pruning = any(VARIANTS[n].pruned for n in names)
    opts = replace(
        options,
        quantize="int8",
        io_type=None,
        qat=False,
        prune=(options.prune or DEFAULT_SPARSITY) if wants_pruning else None,
    ).resolved()
    from edge.converter.train import prune_tune, train_qat  # TensorFlow from here on, once the options hold

    split = read_images(opts, log)
    model, training = fit(replace(opts, prune=None), split, log)
    trained = model.get_weights()
    exported, rows = {}, {}
    # Variants that train further go last, each starting again from the shared weights.
    for name in sorted(names, key=lambda n: VARIANTS[n].pruned or VARIANTS[n].qat):
        variant = VARIANTS[name]
        log(f"variant {name}")
        try:
            source = model
            if variant.pruned or variant.qat:
                model.set_weights(trained)
                if variant.pruned:
                    source, _ = prune_tune(model, split, opts, log)
                else:  # QAT of the unpruned model: nothing to preserve
                    source, _ = train_qat(model, split, replace(opts, prune=None), log)
            exported[name] = export(
                source, split, variant.quantize, variant.io_type, replace(opts, qat=variant.qat), log
            )
        except Exception as e:  # noqa: BLE001 -- one variant failing to convert must not sink the others
            rows[name] = failed(name, e, log)
    # Every file is measured after all training has ended, so no training work competes for the cores.
    turns = {}
    for name, result in exported.items():
        tflite = result.model
        interpreter = make_interpreter(tflite, threads)
        metrics, _ = check(interpreter, result.keras_scores, split, opts, log)
        turns[name] = (interpreter, split.val_x[:PER_ROUND], (0.0, 255.0))
        rows[name] = {
            **row(
                name,
                tflite,
                metrics["tflite"]["accuracy"],
                metrics["tflite"]["macro_f1"],
                metrics["agreement"],
                metrics["host_latency_ms"],
            ),
            "keras_accuracy": metrics["keras"]["accuracy"],
            "baseline": metrics["baseline"],
        }
        if VARIANTS[name].pruned:
            rows[name]["sparsity"] = tflite_sparsity(tflite)["sparsity"]
    time_in_turns(rows, turns, rounds, log)
    return BenchResult(
        **header("variants", threads),
        model=opts.model,
        input_size=opts.input_size,
        data=str(opts.data),
        images={"train": len(split.train_y), "validation": len(split.val_y)},
        agreement_with="the Keras model each file was exported from",
        training=training,
        rows=[rows[n] for n in names],
    )
