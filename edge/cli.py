"""The `edge` command: a thin click layer over the Python API (`edge.convert`, `edge.evaluate`,
`edge.bench`, `edge.run`, ...), which checks every argument; the text comes from `edge.render`.

User errors (EdgeError, bad options) print one line on stderr and exit with code 2, no traceback.
`--json` means the same on every command: alone (or `--json -`) the result goes to stdout as JSON
instead of text; `--json FILE` writes it to FILE as well as printing the text.
"""

import importlib
import json
import sys
import types
import typing
from contextlib import closing
from dataclasses import MISSING
from pathlib import Path

import click

import edge
from edge import options as edge_options
from edge import render
from edge.errors import EdgeError
from edge.files import check_writable, write_json
from edge.layers import host_only
from edge.progress import Log
from edge.results import Result
from edge.version import VERSION


class Command(click.Command):
    """A command whose options may come from options dataclasses (`options_of`), made when it first parses its
    arguments or shows --help: `edge token list` imports nothing of what `edge run`'s options live beside
    (numpy, OpenCV), and a device install, without a host's modules, still has every command."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.pending = getattr(self.callback, "options_of", [])

    def get_params(self, ctx: click.Context) -> list:
        if self.pending:
            declared = self.params
            above: list[list[click.Parameter]] = [[] for _ in range(len(declared) + 1)]  # made above each param
            # A host's options on a device install: the one line a host command says there, not click's
            # "no such option".
            with host_only("edge" + ctx.command_path[len(ctx.find_root().command_path) :]):
                for path, names, below in self.pending:  # bottom up: each goes above those applied before it
                    above[len(declared) - below][:0] = dataclass_options(path, names)
            self.params = [param for i, made in enumerate(above) for param in [*made, *declared[i : i + 1]]]
            self.pending = []
        return super().get_params(ctx)


class Group(click.Group):
    command_class = Command
    group_class = type  # sub-groups are Groups, and make Commands too


@click.group(cls=Group)
@click.version_option(VERSION, prog_name="edge")
@click.pass_context
def cli(ctx):
    """Take a vision model from a laptop to a Raspberry Pi or a Coral board, and prove how well it works there."""
    ctx.with_resource(edge_options.flags())  # the API's errors in the command line's words


def options_of(path: str, *names: str):
    """The options of an options dataclass (edge.options), given as "module:Class" (`names`: only these
    fields), in this place among the command's options; made when the command runs or shows --help."""

    def apply(f):
        below = len(getattr(f, "__click_params__", ()))  # click's: the options declared below this one
        f.options_of = [*getattr(f, "options_of", []), (path, names, below)]
        return f

    return apply


def dataclass_options(path: str, names=()) -> list[click.Option]:
    """The click options of a dataclass's fields (`names`: these, in this order): each by its keyword and flag,
    with its default (which --help shows) and help; a click type from the field's type. Without a package
    an extra brings, none: the command names the extra when called."""
    module, name = path.split(":")
    try:
        cls = getattr(importlib.import_module(module), name)
    except ModuleNotFoundError as e:
        if (e.name or "").startswith("edge."):
            raise  # a host's module, on a device install
        return []
    specs = edge_options.options(cls)
    keyword_of = {spec.name: keyword for keyword, spec in specs.items()}
    made = []
    for keyword in [keyword_of[name] for name in names] if names else specs:
        spec = specs[keyword]
        default = None if spec.default is MISSING else spec.default
        meta = spec.metadata
        made.append(
            click.Option(
                [meta["flag"] or edge_options.flag_of(spec), keyword],
                default=default,
                show_default=default is not None and default is not False,
                help=meta["help"],
                **{**click_type(spec.type), **meta["click"]},
            )
        )
    return made


def click_type(annotation) -> dict:
    """click.Option's type for a field's type (Path, int, float or str, or None with one of them; a tuple of one
    of them, tuple[Path, ...], is that type given again for more: multiple=True); a bool: a flag. Anything else
    (a value given as text or a pair): click's guess from the default."""
    union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    kinds = list(
        dict.fromkeys(
            element(kind)
            for kind in (typing.get_args(annotation) if union else (annotation,))
            if kind is not type(None)
        )
    )
    kind = kinds[0] if len(kinds) == 1 else None
    if kind is bool:
        return {"is_flag": True}
    if kind is Path:
        return {"type": click.Path(path_type=Path)}
    return {"type": kind} if kind in (int, float, str) else {}


def element(kind):
    """What a tuple of one type (tuple[Path, ...]) holds; any other type as it is."""
    args = typing.get_args(kind)
    return args[0] if typing.get_origin(kind) is tuple and args[1:] == (Ellipsis,) else kind


class Imported(click.Option):
    """An option whose default is a module's constant, `default="module:NAME"`, imported when the command runs
    or shows --help: the modules the defaults of edge eval and bench live in import OpenCV."""

    def get_default(self, ctx: click.Context, call: bool = True):
        module, name = str(self.default).split(":")
        return getattr(importlib.import_module(module), name)


def given(ctx: click.Context, values: dict) -> dict:
    """The options the user typed: the API's defaults (which --help shows) fill in the rest."""
    return {
        name: value
        for name, value in values.items()
        if ctx.get_parameter_source(name) != click.core.ParameterSource.DEFAULT
    }


JSON = click.option(
    "--json",
    "json_to",
    is_flag=False,
    flag_value="-",
    metavar="[FILE|-]",
    help="The result as JSON: alone or with -, on stdout instead of the text; with FILE, into FILE.",
)
DATA = click.option("--data", type=click.Path(path_type=Path), help="Folder with one sub-folder of images per class.")
CONVERT = "edge.converter.options:ConvertOptions"
QUANTIZE = "edge.converter.quantize_model:QuantizeOptions"
IMPORT = "edge.converter.import_model:ImportOptions"
# ConvertOptions' fields that train a model: edge convert's, and edge bench's for --model.
TRAINING = (
    "model",
    "val",
    "val_split",
    "seed",
    "weights",
    "input_size",
    "alpha",
    "epochs",
    "fine_tune_epochs",
    "fine_tune_layers",
    "lr",
    "fine_tune_lr",
    "batch_size",
    "augment",
    "flip",
    "prune",
)
DISTILLATION = ("teacher", "distill_temperature", "distill_weight", "gain")  # ConvertOptions' too
BUDGET = ("max_drop", "mcnemar", "fallback", "accept_drop")  # fields of ConvertOptions and QuantizeOptions both
# A model file's options, as edge run declares them; edge eval, bench and quantize take them too.
BARE_MODEL = options_of("edge.runner:RunOptions", "labels", "input_range")
MODEL_FILE = options_of("edge.runner:RunOptions", "labels", "input_range", "threads")
DELEGATE = options_of("edge.runner:RunOptions", "delegate")
DB = click.option(
    "--db",
    default="edge.db",
    show_default=True,
    help="The database edge serve stores into: its SQLite file, or its postgresql:// URL.",
)


def json_destination(json_to: str | None) -> Path | None:
    """The file --json names, checked before any work; None for none or stdout (-)."""
    return check_writable(json_to, "--json") if json_to not in (None, "-") else None


def emit(result, json_to: str | None, as_text) -> None:
    """Write the result to the --json file, and print it: as JSON for --json / --json -, else as text. A typed
    result (edge.results) is written as its to_json(), and rendered as it is."""
    data = result.to_json() if isinstance(result, Result) else result
    if json_to not in (None, "-"):
        write_json(json_to, data)
    click.echo(json.dumps(data, indent=2) if json_to == "-" else as_text(result))


@cli.command()
@options_of(
    CONVERT, "data", *TRAINING, "out", "quantize", "device", "io_type", "qat", *DISTILLATION, *BUDGET, "allow_weak"
)
@JSON
@click.option("--list-models", is_flag=True, help="List the backbones and exit.")
@click.pass_context
def convert(ctx, json_to, list_models, **options):
    """Fine-tune a backbone on image folders, prune, quantize, and export a TFLite bundle."""
    with host_only("edge convert"):
        from edge.converter.backbones import BACKBONES
    if list_models:
        click.echo(render.models_text(BACKBONES.values()))
        return
    json_destination(json_to)
    emit(edge.convert(log=Log(), **given(ctx, options)), json_to, render.convert_text)


@cli.command()
@click.argument("model", type=click.Path(path_type=Path))
@DATA
@options_of(QUANTIZE, "out")
@BARE_MODEL
@options_of(QUANTIZE, "calibration", "calibration_images", "seed", "io_type", "device", *BUDGET)
@JSON
@click.option(
    "--plot",
    type=click.Path(path_type=Path),
    help="Write the error per operation, those kept higher marked, to this .png/.svg/.pdf.",
)
@click.pass_context
def quantize(ctx, model, json_to, plot, **options):
    """Quantize a float model (a float32 bundle or .tflite file) to an int8 bundle, keeping its accuracy on
    --data within --max-drop of the float model's: the operations that hurt most stay higher."""
    with host_only("edge quantize"):
        from edge.converter.plots import save_error_plot
        from edge.eval.plots import check_plot_path
    plot = check_plot_path(plot) if plot else None
    json_destination(json_to)
    result = edge.quantize(model, log=Log(), **given(ctx, options))
    if plot:
        save_error_plot(result, plot)
    emit(result, json_to, render.quantize_text)


@cli.command("import")
@click.argument("model", type=click.Path(path_type=Path))
@DATA
@options_of(IMPORT)
@JSON
@click.pass_context
def import_command(ctx, model, json_to, **options):
    """Bring a classifier trained in PyTorch (an exported program .pt2, or TorchScript) or an ONNX file into a
    bundle: its preprocessing inside the graph, checked against PyTorch (ONNX Runtime) on --data; with --quantize
    int8, quantized within --max-drop as edge quantize does."""
    json_destination(json_to)
    emit(edge.import_model(model, log=Log(), **given(ctx, options)), json_to, render.import_text)


@cli.command()
@click.option("--out", default="edge-demo", show_default=True, type=click.Path(path_type=Path))
@JSON
def demo(out, json_to):
    """The embedded demo end to end: convert 600 scanned digits (4 classes) with MobileNetV2 to an int8
    bundle, then evaluate it on the 120 scans it never saw."""
    json_destination(json_to)
    result = edge.demo(out, log=Log())
    emit(result, json_to, render.demo_text)


@cli.command("eval")
@click.argument("model", type=click.Path(path_type=Path))
@DATA
@MODEL_FILE
@DELEGATE
@click.option("--top-k", type=int, help="Also report top-K accuracy [top-1, and top-5 with at least 5 classes].")
@click.option("--batch", default=1, show_default=True, help="Images per invoke.")
@click.option(
    "--warmup",
    cls=Imported,
    default="edge.eval.evaluate:WARMUP",
    type=int,
    show_default=True,
    help="Runs after the first left out of the latency statistics.",
)
@JSON
@click.option(
    "--plot",
    type=click.Path(path_type=Path),
    help="Write the confusion matrices and latency histogram to this .png/.svg/.pdf.",
)
@click.option(
    "--fingerprint",
    is_flag=True,
    help="Keep the model's scores on --data (its validation images) as its "
    "fingerprint, which edge run watches drift against: in the bundle's edge.json, or in "
    "NAME.fingerprint.json beside a bare .tflite.",
)
def eval_command(model, data, json_to, plot, **options):
    """Accuracy, precision, recall, F1, confusion matrix, top-k and latency of a bundle or a .tflite file."""
    from edge.eval.plots import check_plot_path, save_plot

    plot = check_plot_path(plot) if plot else None
    json_destination(json_to)
    result = edge.evaluate(model, data, log=Log(), **options)
    if plot:
        save_plot(result.report, result.times_ms, plot)
    emit(result.report, json_to, render.eval_text)


@cli.command()
@click.argument("models", nargs=-1, type=click.Path(path_type=Path))
@DATA
@options_of(CONVERT, *TRAINING)
@click.option(
    "--variants",
    help="Exports of one trained --model to compare: float32, float16, dynamic, int8, "
    "int8-pruned, int8-qat [all but int8-qat].",
)
@MODEL_FILE
@click.option(
    "--rounds",
    cls=Imported,
    default="edge.eval.bench:ROUNDS",
    type=int,
    show_default=True,
    help="Latency rounds in which the models take turns (50 images each); 0: one pass, during evaluation.",
)
@click.option(
    "--out",
    default=".",
    show_default=True,
    type=click.Path(path_type=Path),
    help="Folder for bench.json and bench.csv.",
)
@JSON
@click.pass_context
def bench(ctx, models, data, variants, labels, input_range, threads, rounds, out, json_to, **training):
    """Compare exports: train --model once and export each of --variants, or compare existing bundles and
    .tflite files (MODELS) on --data. Prints one table; writes bench.json and bench.csv."""
    from edge.eval.bench import check_out, write_results

    out = check_out(out)
    json_destination(json_to)
    result = edge.bench(
        models,
        data,
        variants=variants,
        labels=labels,
        input_range=input_range,
        threads=threads,
        rounds=rounds,
        log=Log(),
        **given(ctx, training),
    )
    json_file, csv_file = write_results(result, out)
    emit(result, json_to, lambda r: f"{render.bench_text(r)}\n\nwrote {json_file} and {csv_file}")


@cli.command("run")
@click.argument("model", type=click.Path(path_type=Path))
@click.option(
    "--source",
    default="0",
    show_default=True,
    envvar="EDGE_SOURCE",
    help="Camera index, /dev/videoN, "
    "video file, stream URL (rtsp://, http://), folder of images, GStreamer pipeline, or imx500 (the AI "
    "Camera's sensor runs the bundle's network.rpk) [$EDGE_SOURCE: a URL with a password stays out of ps].",
)
@options_of("edge.runner:RunOptions")
@JSON
@options_of("edge.reporter:ReportOptions")
@options_of("edge.collect:CollectOptions")
@options_of("edge.follow:FollowOptions")
@options_of("edge.calls:CallOptions")
@click.pass_context
def run_command(ctx, model, source, json_to, **options):
    """Classify camera frames on the device, and evaluate live against ground truth."""
    json_destination(json_to)
    emit(edge.run(model, source, log=Log(), **given(ctx, options)), json_to, render.run_text)


class CommandGroup(Command, Group):
    """A group that is a command too: its own options (`options_of`), run when no subcommand is given."""


@cli.group(cls=CommandGroup, invoke_without_command=True)
@options_of("edge.server.options:ServeOptions")
@click.pass_context
def serve(ctx, **options):
    """Collect device reports and frames, and show them: the HTTP API and dashboard, where collected frames are
    labelled."""
    if ctx.invoked_subcommand:
        if given(ctx, options):
            raise EdgeError(f"edge serve {ctx.invoked_subcommand} takes its own options, after its name")
        return
    with host_only("edge serve", extra="serve"):
        from edge.server.options import ServeOptions
        from edge.server.workers import run_server

    run_server(ServeOptions(**options), log=lambda m: click.echo(m, err=True))


@serve.command("migrate")
@click.option("--from", "source", required=True, help="The SQLite file the host served (edge serve --db FILE).")
@click.option(
    "--to",
    "target",
    required=True,
    help="The PostgreSQL database: postgresql://USER@HOST:PORT/DB (its password in PGPASSWORD or ~/.pgpass).",
)
@click.option(
    "--batch",
    cls=Imported,
    default="edge.server.migrate:BATCH",
    type=int,
    show_default=True,
    help="Rows a transaction.",
)
@JSON
def serve_migrate(source, target, batch, json_to):
    """Copy a host's SQLite store into PostgreSQL: every table (reports, frames and labels, devices, tokens,
    models, rollouts), then each table's rows counted on both sides. Stop the host first. Cut short (Ctrl-C,
    a lost connection), the same command carries on where it stopped, copying nothing twice. A store of an
    older edge is brought to this one's version first, in its file. A database holding another host's data is
    refused."""
    with host_only("edge serve migrate", extra="serve"):
        from edge.server import migrate

    json_destination(json_to)
    emit(migrate.migrate(source, target, Log(sys.stderr.isatty()), batch), json_to, migrate.text)  # a bar on a terminal


@cli.group("frames")
def frames_group():
    """Frames the devices collected (edge run --collect) and people labelled on the dashboard."""


@frames_group.command("export")
@DB
@click.option(
    "--out", required=True, type=click.Path(path_type=Path), help="A new folder: one sub-folder of JPEGs a label."
)
@click.option("--device", help="Only this device's frames [every device's].")
@click.option(
    "--unlabelled",
    is_flag=True,
    help="Also the frames not yet labelled or discarded, into OUT/_unlabelled/: edge convert --teacher labels them.",
)
@JSON
def frames_export(db, out, device, unlabelled, json_to):
    """Write the labelled frames as an image-folder data set, for edge convert --data ORIGINAL --data OUT."""
    json_destination(json_to)
    emit(edge.export_frames(db, out, device, unlabelled), json_to, render.frames_export_text)


@cli.group("devices")
def devices_group():
    """The boards edge knows: what each needs and gets."""


@devices_group.command("list")
@JSON
def devices_list(json_to):
    """One line a device profile."""
    from dataclasses import asdict

    from edge.devices.profiles import PROFILES

    json_destination(json_to)
    emit([asdict(p) for p in PROFILES.values()], json_to, lambda _: render.profiles_text(PROFILES.values()))


@devices_group.command("show")
@click.argument("name")
@JSON
def devices_show(name, json_to):
    """Everything about one device profile, with published reference latencies."""
    from dataclasses import asdict

    from edge.devices.profiles import get_profile

    json_destination(json_to)
    profile = get_profile(name)
    emit(asdict(profile), json_to, lambda _: render.profile_text(profile))


@devices_group.command("compile")
@click.argument("bundle", type=click.Path(path_type=Path))
def devices_compile(bundle):
    """Compile a full-int8 bundle for the Edge TPU with edgetpu_compiler, keeping model_edgetpu.tflite in it."""
    with host_only("edge devices compile"):
        from edge.devices.edgetpu import compile_bundle

    record = compile_bundle(bundle)
    click.echo(render.compile_text(bundle, record))
    for warning in record["warnings"]:
        click.echo(f"warning: {warning}", err=True)


@devices_group.group("toolchain")
def toolchain_group():
    """Converters that need an environment of their own: imx500 (the AI Camera's, Sony's MCT and imxconv-tf)."""


@toolchain_group.command("install")
@click.argument("name")
@JSON
def toolchain_install(name, json_to):
    """Build toolchain NAME's own venv from the package index (imx500: about 2.3 GB); nothing if installed."""
    json_destination(json_to)
    emit(edge.install_toolchain(name, log=Log()), json_to, render.toolchain_text)


@toolchain_group.command("list")
@JSON
def toolchain_list(json_to):
    """The toolchains: installed or not, where, how big."""
    json_destination(json_to)
    emit(edge.toolchains(), json_to, lambda result: "\n".join(render.toolchain_text(t) for t in result))


@cli.command("package")
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--device", required=True, help="Device profile (edge devices list).")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="The .tar.gz to write.")
@click.option("--report-to", required=True, help="The edge serve host the device reports to.")
@click.option("--device-id", required=True, help="The device's name (edge token create NAME on the host).")
@click.option(
    "--token",
    default="",
    help="The device's token (one per device: edge token create) [or later in /etc/edge/edge.conf].",
)
@click.option("--source", help="The camera or stream edge run reads [imx500 for rpi-ai-camera, else 0].")
@click.option("--args", "extra", default="", help="More edge run options, e.g. '--truth mug --smooth 5'.")
@click.option(
    "--trust",
    type=click.Path(path_type=Path),
    help="A public key (edge keys create's edge-sign.pub): "
    "the device follows the model versions the host names, signed with it (edge rollout).",
)
@click.option(
    "--mqtt-password",
    default="",
    envvar="EDGE_MQTT_PASSWORD",
    help="The password of the broker's user in --args '--publish mqtt://USER@HOST/PREFIX', for edge.conf only "
    "[$EDGE_MQTT_PASSWORD: set it there, since other users see a command line in ps].",
)
@click.option(
    "--webhook",
    default="",
    envvar="EDGE_WEBHOOK",
    help="A URL the device POSTs its calls to (edge run --webhook), for edge.conf only "
    "[$EDGE_WEBHOOK: a webhook's URL is often its secret].",
)
def package_command(bundle, device, out, report_to, device_id, token, source, extra, trust, mqtt_password, webhook):
    """One .tar.gz that sets a device up: bundle, device install, setup script, systemd unit, config."""
    with host_only("edge package"):
        from edge.devices.package import package

    result = package(
        bundle,
        device,
        out,
        source,
        report_to,
        device_id,
        token,
        extra,
        log=lambda m: click.echo(m, err=True),
        trust=trust,
        mqtt_password=mqtt_password,
        webhook=webhook,
    )
    click.echo(render.package_text(result))


@cli.group()
def token():
    """Tokens for devices (to send reports) and readers (of a --protect-reads dashboard)."""


@token.command("create")
@click.argument("name")
@DB
@click.option("--reader", is_flag=True, help="A token that reads the dashboard and API, and cannot write.")
@click.option(
    "--publisher",
    is_flag=True,
    help="A token that pushes model versions and rolls them out (edge "
    "models push, edge rollout), and reads no reports.",
)
def token_create(name, db, reader, publisher):
    """Make a token for device NAME (or reader or publisher NAME), printed once: only its hash is kept."""
    with host_only("edge token"):
        from edge.server import store

    if reader and publisher:
        raise EdgeError("give --reader or --publisher, not both: a token has one role")
    with closing(store.open_db(db)) as conn:
        secret = store.create_token(conn, name, "reader" if reader else "publisher" if publisher else "device")
    click.echo(secret)
    if not (reader or publisher):
        click.echo(
            f"on the device: edge run BUNDLE --report-to http://HOST:8765 --device-id {name} "
            "--token TOKEN (or EDGE_TOKEN=TOKEN); it is not shown again",
            err=True,
        )


@token.command("revoke")
@click.argument("name")
@DB
def token_revoke(name, db):
    """Revoke NAME's token at once: its requests get 401 from then on."""
    with host_only("edge token"):
        from edge.server import store

    with closing(store.open_db(db)) as conn:
        store.revoke_token(conn, name)
    click.echo(f"revoked {name}", err=True)


@token.command("list")
@DB
def token_list(db):
    """Names and roles that have tokens (never the tokens)."""
    with host_only("edge token"):
        from edge.server import store

    with closing(store.open_db(db)) as conn:
        click.echo(render.tokens_text(store.list_tokens(conn)))


HOST = click.option(
    "--host",
    "host_url",
    required=True,
    envvar="EDGE_HOST",
    help="The edge serve host, e.g. http://192.168.1.10:8765 [$EDGE_HOST].",
)
PUBLISHER = click.option(
    "--token",
    required=True,
    envvar="EDGE_TOKEN",
    help="A publisher token (edge token create "
    "NAME --publisher) [$EDGE_TOKEN: an environment variable stays out of ps].",
)


@cli.group("keys")
def keys_group():
    """The key pair model versions are signed with."""


@keys_group.command("create")
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path),
    help="A folder for edge-sign.key (private, "
    "mode 0600: keep it where models are built) and edge-sign.pub (for the devices' --trust).",
)
@JSON
def keys_create(out, json_to):
    """Make an Ed25519 key pair; an existing one is never replaced."""
    json_destination(json_to)
    emit(
        edge.create_keys(out),
        json_to,
        lambda r: f"wrote {r['private']} (keep it private) and {r['public']} (give it to the devices: --trust)",
    )


@cli.group("models")
def models_group():
    """Model versions on an edge serve host: pushed signed, listed."""


@models_group.command("push")
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--name", required=True, help="The model's name: versions of it are NAME@1, NAME@2, ...")
@HOST
@PUBLISHER
@click.option(
    "--key",
    required=True,
    type=click.Path(path_type=Path),
    help="The private key to sign with (edge keys create's edge-sign.key).",
)
@JSON
def models_push(bundle, name, host_url, token, key, json_to):
    """Sign BUNDLE and push it as the next version of NAME; only the files the host lacks are sent."""
    json_destination(json_to)
    emit(edge.push_model(bundle, name, host_url, token, key).to_json(), json_to, render.push_text)


@models_group.command("list")
@click.option("--name", help="Only this model's versions.")
@HOST
@PUBLISHER
@JSON
def models_list(name, host_url, token, json_to):
    """The versions the host holds, newest first."""
    json_destination(json_to)
    emit({"models": edge.list_models(host_url, token, name)}, json_to, render.versions_text)


@cli.group("rollout")
def rollout_group():
    """Staged rollouts of a model version: canaries first, promoted or rolled back on the field's word."""


@rollout_group.command("start")
@click.argument("version")
@HOST
@PUBLISHER
@click.option("--devices", help="Comma-separated devices [every device that has reported: --all].")
@click.option("--all", "everyone", is_flag=True, help="Every device that has reported (the default).")
@click.option("--canary", type=int, help="Devices that get the version first [10% of them, at least 1].")
@click.option(
    "--waves",
    type=int,
    help="Waves the rest get it in after the canaries, each but the last watched "
    "and judged like them [1: all at once].",
)
@click.option("--watch", type=float, help="Seconds each stage runs it before it is judged [600].")
@click.option(
    "--guard",
    help="Limits, e.g. top1_drop=0.1,accuracy_drop=0.05,latency_ratio=1.5,drift_share=0.5,"
    "min_frames=100 (those are the defaults).",
)
@JSON
def rollout_start(version, host_url, token, devices, everyone, canary, waves, watch, guard, json_to):
    """Roll VERSION (NAME@N) out: canaries first, then every device if the guard holds."""
    if devices and everyone:
        raise EdgeError("give --devices or --all, not both")
    json_destination(json_to)
    named = [d.strip() for d in devices.split(",") if d.strip()] if devices else None
    emit(edge.start_rollout(version, host_url, token, named, canary, watch, guard, waves), json_to, render.rollout_text)


@rollout_group.command("status")
@click.argument("model", required=False)
@HOST
@PUBLISHER
@JSON
def rollout_status(model, host_url, token, json_to):
    """Every rollout (of MODEL), newest first: its stage, each device's version, its history."""
    json_destination(json_to)
    emit(
        {"rollouts": edge.rollout_status(host_url, token, model)},
        json_to,
        lambda r: "\n\n".join(map(render.rollout_text, r["rollouts"])) or "no rollouts",
    )


@rollout_group.command("abort")
@click.argument("model")
@HOST
@PUBLISHER
@JSON
def rollout_abort(model, host_url, token, json_to):
    """Stop MODEL's rollout; every device it moved goes back to what it ran before."""
    json_destination(json_to)
    emit(edge.abort_rollout(model, host_url, token), json_to, render.rollout_text)


def main():
    try:
        rc = cli.main(standalone_mode=False)
    except EdgeError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    except click.UsageError as e:
        where = f" (see '{e.ctx.command_path} --help')" if e.ctx else ""
        click.echo(f"error: {e.format_message()}{where}", err=True)
        sys.exit(2)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except (click.Abort, KeyboardInterrupt):
        click.echo("interrupted", err=True)
        sys.exit(130)
    sys.exit(rc if isinstance(rc, int) else 0)


if __name__ == "__main__":
    main()
