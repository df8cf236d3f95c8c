"""edge: take a vision model from a laptop to a Raspberry Pi or a Coral board, and prove how well it
works there.

    images -> edge.convert(...) -> bundle (model.tflite, labels.txt, edge.json) -> evaluate / bench / run

The API does, and refuses, exactly what the `edge` command does: a bad argument raises `EdgeError` with
the message the command prints, naming the API's parameters where the command names its flags. Nothing
imported here needs TensorFlow; `convert` and `bench` of a `model` import it when called, and only a host
install has them. Each command's result is typed (edge.results), and its to_json() is what the command's
`--json` writes.
"""

from edge.errors import EdgeError, OptionError
from edge.layers import host_only
from edge.options import python_names
from edge.results import BenchResult, ConvertResult, DemoResult, ImportResult, QuantizeResult, RunResult
from edge.version import VERSION as __version__


def __getattr__(name: str):
    """Bundle and read_bundle, imported when first asked for: edge.bundle brings numpy, which every command
    would import with `edge` (edge token, edge --version) and only some need."""
    if name in ("Bundle", "read_bundle"):
        from edge import bundle

        return getattr(bundle, name)
    raise AttributeError(f"module 'edge' has no attribute '{name}'")


def convert(model=None, data=None, out=None, log=None, options=None, **keywords) -> ConvertResult:
    """Fine-tune `model` on the image folders in `data`, quantize it and write a bundle to `out`
    [bundles/MODEL-DEVICE, else bundles/MODEL-QUANTIZE]. `options`: an `edge.converter.options.ConvertOptions`,
    or else its fields as keywords, as `edge convert` names them; None is the default. Returns the summary, an
    `edge.results.ConvertResult` (the bundle's path and its edge.json; to_json() is what `--json` writes)."""
    from edge.options import made

    with host_only("edge convert"):
        from edge.converter.options import ConvertOptions
        from edge.converter.pipeline import convert as run
    with python_names(ConvertOptions, "model", "data", "out"):
        return run(
            made(ConvertOptions, options, {"model": model, "data": data, "out": out, **keywords}, "edge convert"), log
        )


def quantize(model=None, data=None, out=None, log=None, options=None, **keywords) -> QuantizeResult:
    """Quantize a float model (a float32 bundle or a bare float .tflite) to an int8 bundle at `out`, keeping
    its accuracy on the labelled images in `data` within `max_drop` of the float model's. `options`: an
    `edge.converter.quantize_model.QuantizeOptions`, or else its fields as keywords, as `edge quantize` names
    them; None is the default. Returns the summary, a QuantizeResult."""
    from edge.options import made

    with host_only("edge quantize", "quantize"):
        import ai_edge_quantizer  # noqa: F401 -- missing, it is named now, with the extra that brings it

        from edge.converter.quantize_model import QuantizeOptions, quantize_model
    with python_names(QuantizeOptions, "model", "data", "out"):
        return quantize_model(
            made(QuantizeOptions, options, {"model": model, "data": data, "out": out, **keywords}, "edge quantize"), log
        )


def import_model(model=None, labels=None, data=None, out=None, log=None, options=None, **keywords) -> ImportResult:
    """Bring a classifier trained in PyTorch (an exported program .pt2, or TorchScript) or an ONNX file into a
    bundle at `out`: its preprocessing inside the graph, checked against PyTorch (ONNX Runtime) on the labelled
    images in `data` (class names in
    output order in `labels`); with quantize="int8", quantized within `max_drop`. `options`: an
    `edge.converter.import_model.ImportOptions`, or else its fields as keywords, as `edge import` names them.
    Returns the summary, an ImportResult."""
    from importlib.util import find_spec

    from edge.options import made

    with host_only("edge import", "import"):
        for package in ("torch", "litert_torch"):  # named now, with the extra that brings them; imported when used
            if find_spec(package) is None:
                raise ModuleNotFoundError(name=package)
        from edge.converter.import_model import ImportOptions
        from edge.converter.import_model import import_model as run
    given = {"model": model, "labels": labels, "data": data, "out": out, **keywords}
    with python_names(ImportOptions, "model", "labels", "data", "out"):
        return run(made(ImportOptions, options, given, "edge import"), log)


def demo(out="edge-demo", log=None) -> DemoResult:
    """`edge demo`: convert the embedded digit scans to an int8 bundle in out/bundle and evaluate it on the
    scans it never saw; returns a DemoResult: .convert (the ConvertResult), .eval (the EvalResult) and .test_data
    (the folder of those scans)."""
    with host_only("edge demo"):
        from edge.converter.demo import demo as run
    return run(out, log)


@python_names("model", "data", "labels", "input_range", "threads", "top_k", "batch", "warmup", "delegate")
def evaluate(
    model,
    data,
    labels=None,
    input_range=None,
    threads=None,
    top_k=None,
    batch=1,
    warmup=None,
    delegate=None,
    log=None,
    fingerprint=False,
):
    """Evaluate a bundle folder or .tflite file on image folders (one per class); returns an
    `edge.eval.evaluate.Evaluation` whose `report` (an EvalResult) is what `edge eval` prints; its to_json(), what
    `--json` writes. With `fingerprint`, the
    model's scores on these images (its validation images) become its fingerprint for drift (`edge run`): in the
    bundle's edge.json, or beside a bare .tflite file as NAME.fingerprint.json (the report names the file)."""
    from dataclasses import replace

    from edge import drift
    from edge.eval.evaluate import WARMUP
    from edge.eval.evaluate import evaluate as run

    if fingerprint:
        drift.check_destination(model)
    result = run(
        model, data, labels, input_range, threads, top_k, batch, WARMUP if warmup is None else warmup, delegate, log
    )
    if fingerprint:
        result.report = replace(result.report, fingerprint=str(drift.save(model, result.model.labels, result.scores)))
    return result


def bench(
    models=(), data=None, variants=None, labels=None, input_range=None, threads=None, rounds=None, log=None, **training
) -> BenchResult:
    """Compare exports on one data set: existing bundles and .tflite files (`models`), or, without them,
    the `variants` of one model trained with the options of `edge convert`. Returns a BenchResult; its to_json() is
    what bench.json holds."""
    from edge.eval.bench import ROUNDS, bench_files
    from edge.options import made

    rounds = ROUNDS if rounds is None else rounds
    with python_names("models", "data", "variants", "labels", "input_range", "threads", "rounds", "model", *training):
        if models:
            given = [*training, *(["variants"] if variants is not None else [])]
            if given:
                raise OptionError(
                    f"--{given[0].replace('_', '-')} is for training a --model; with bundle or .tflite "
                    "arguments, leave it out"
                )
            return bench_files(models, data, labels, input_range, threads, rounds, log)
        if labels is not None or input_range is not None:
            raise OptionError("--labels and --input-range are for bare .tflite arguments, not for --model")
        with host_only("edge bench --model"):
            from edge.converter.options import ConvertOptions
            from edge.converter.variants import DEFAULT_VARIANTS, bench_variants
        return bench_variants(
            made(ConvertOptions, None, {"data": data, **training}, "edge bench"),
            variants or DEFAULT_VARIANTS,
            threads,
            rounds,
            log,
        )


def run(model, source="0", log=None, options=None, **keywords) -> RunResult:
    """Classify frames from `source` (camera, file, stream, folder, GStreamer pipeline) with `model`, and
    evaluate live against the truth given; with `report_to`, report to an `edge serve` host, and with
    `collect` (a rule of `edge.collect.RULES`), send it the frames that matter; with `publish` (an MQTT
    broker) or `webhook`, send the calls where people act on them (edge.calls). `options`: an
    `edge.runner.RunOptions`, or else its options as keywords, as `edge run` names them (its nested
    ReportOptions' and CollectOptions' too: report_to, collect, ...); None is the default. Returns the summary, a
    RunResult."""
    from edge.options import made
    from edge.runner import OPTION_GROUPS, RunOptions, run_options
    from edge.runner import run as run_frames

    with python_names(*OPTION_GROUPS, "model", "source"):
        return run_frames(model, source, made(RunOptions, options, keywords, "edge.run", build=run_options), log)


def export_frames(db="edge.db", out=None, device=None, unlabelled=False) -> dict:
    """Write the frames labelled on `edge serve`'s dashboard (or `device`'s) from its database `db` as an
    image-folder data set at `out` (a new folder), to train on beside the original data; with `unlabelled`, the
    frames not yet labelled or discarded into its _unlabelled/ folder too (edge convert --teacher labels them).
    Returns what it wrote, with the labels that are new classes."""
    with host_only("edge frames export", extra="serve"):
        from edge.server.dataset import export_frames as run
    if out is None:
        raise EdgeError("--out is required: the new folder the labelled frames go into")
    return run(db, out, device, unlabelled)


def install_toolchain(name: str, log=None) -> dict:
    """Build a device converter's own venv (`edge devices toolchain install NAME`; imx500: the AI Camera's, about
    2.3 GB from the package index); nothing to do if it is installed. Returns its status, with the seconds taken."""
    with host_only("edge devices toolchain"):
        from edge.devices.toolchains import install
    return install(name, log)


def toolchains() -> list[dict]:
    """Every toolchain's status: installed or not, where, its size and package versions."""
    with host_only("edge devices toolchain"):
        from edge.devices.toolchains import TOOLCHAINS, status
    return [status(name) for name in TOOLCHAINS]


__all__ = [
    "Bundle",
    "EdgeError",
    "__version__",
    "bench",
    "convert",
    "demo",
    "evaluate",
    "export_frames",
    "install_toolchain",
    "read_bundle",
    "run",
    "toolchains",
]


def create_keys(out) -> dict:
    """An Ed25519 key pair in folder `out` to sign model versions with (`edge keys create`): {"private", "public"}
    paths; an existing pair is never replaced."""
    from edge.signing import create_keys as make

    private, public = make(out)
    return {"private": str(private), "public": str(public)}


def _publish():
    """edge.publish: what a build machine says to an `edge serve` host as a publisher."""
    with host_only("edge models and edge rollout", extra="follow"):
        from edge import publish
    return publish


def push_model(bundle, name: str, host: str, token: str, key):
    """Sign `bundle` with the private key file `key` and push it to `host` as the next version of `name`; a
    PushResult (with to_json)."""
    return _publish().push_model(bundle, name, host, token, key)


def list_models(host: str, token: str, name: str | None = None) -> list[dict]:
    """The model versions `host` holds (of `name`), newest first."""
    return _publish().list_models(host, token, name)


def start_rollout(
    version: str, host: str, token: str, devices=None, canary=None, watch=None, guard=None, waves=None
) -> dict:
    """Roll `version` ("NAME@N") out to `devices` (None: every device that has reported): `canary` devices
    first [10%, at least one], judged after `watch` seconds [600] by `guard` ("top1_drop=0.1,..."), then the
    rest in `waves` [1], each but the last watched and judged the same way."""
    return _publish().start_rollout(host, token, version, devices, canary, watch, guard, waves)


def rollout_status(host: str, token: str, model: str | None = None) -> list[dict]:
    """Every rollout (of `model`) on `host`, newest first, with each device's version and the history."""
    return _publish().rollout_status(host, token, model)


def abort_rollout(model: str, host: str, token: str) -> dict:
    """Stop `model`'s rollout; every device it moved goes back to what it ran before."""
    return _publish().abort_rollout(host, token, model)
