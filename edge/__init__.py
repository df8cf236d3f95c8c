"""edge: take a vision model from a laptop to a Raspberry Pi or a Coral board, and prove how well it
works there.

    images -> edge.convert(...) -> bundle (model.tflite, labels.txt, edge.json) -> eval / run

Nothing imported here needs TensorFlow; `convert` imports it when called.
"""
__version__ = "0.1.0"

from edge.bundle import Bundle, read_bundle  # noqa: E402
from edge.errors import EdgeError  # noqa: E402


def convert(model: str, data, out, log=None, **options) -> dict:
    """Fine-tune `model` on the image folders in `data`, quantize it and write a bundle to `out`.

    Options are those of `edge convert` (see `convert.options.ConvertOptions`); returns the summary.
    """
    from convert.options import ConvertOptions
    from convert.pipeline import convert as run

    return run(ConvertOptions(model=model, data=data, out=out, **options), log)


def evaluate(model, data, **options):
    """Evaluate a bundle folder or .tflite file on image folders (one per class); returns an
    `eval.evaluate.Evaluation` whose `report` is what `edge eval --json` writes.

    Options are those of `edge eval`: labels, input_range, threads, top_k, batch, warmup,
    delegate, log.
    """
    from eval.evaluate import evaluate as run

    return run(model, data, **options)


def bench(models=(), data=None, variants=None, labels=None, input_range=None, threads=None, rounds=None, log=None,
          **options) -> dict:
    """Compare exports on one data set: existing bundles / .tflite files (`models`), or, without them,
    the `variants` of one model trained with the options of `edge convert`. Returns what bench.json holds."""
    from eval.bench import DEFAULT_VARIANTS, ROUNDS, bench_files, bench_variants

    rounds = ROUNDS if rounds is None else rounds

    if models:
        return bench_files(models, data, labels, input_range, threads, rounds, log)
    from convert.options import ConvertOptions

    return bench_variants(ConvertOptions(data=data, **options), variants or DEFAULT_VARIANTS, threads, rounds, log)


__all__ = ["Bundle", "EdgeError", "bench", "convert", "evaluate", "read_bundle"]
