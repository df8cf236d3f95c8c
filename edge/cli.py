"""The `edge` command: a thin click layer over the Python API (`edge.convert`, `edge.evaluate`,
`edge.bench`, `edge.run`, ...), which checks every argument; the text comes from `edge.render`.

User errors (EdgeError, bad options) print one line on stderr and exit with code 2, no traceback.
`--json` means the same on every command: alone (or `--json -`) the result goes to stdout as JSON
instead of text; `--json FILE` writes it to FILE as well as printing the text.
"""
import importlib
import json
import sys
from dataclasses import fields
from pathlib import Path

import click

import edge
from edge import render
from edge.collect import MAX_PER_HOUR, STORE, STORE_MB
from edge.drift import MIN_FRAMES, THRESHOLDS
from edge.errors import EdgeError
from edge.eval.bench import ROUNDS
from edge.eval.evaluate import WARMUP
from edge.files import check_writable, write_json
from edge.layers import host_only
from edge.progress import Log
from edge.reporter import DEFAULT_OUTBOX
from edge.version import VERSION


@click.group()
@click.version_option(VERSION, prog_name="edge")
def cli():
    """Take a vision model from a laptop to a Raspberry Pi or a Coral board, and prove how well it works there."""


def options(*decorators):
    """Apply a list of click options, so commands that share options declare them once."""
    def apply(f):
        for decorator in reversed(decorators):
            f = decorator(f)
        return f
    return apply


def options_of(path: str):
    """The click options of an options dataclass's fields (edge.options), given as "module:Class": imported
    when the command runs or shows --help, so a host's dataclass costs a device nothing. Without the module (a
    device install), the command has no options and says where it runs when called."""
    def apply(f):
        module, name = path.split(":")
        try:
            cls = getattr(importlib.import_module(module), name)
        except ModuleNotFoundError:
            return f
        for spec in reversed(fields(cls)):
            meta = spec.metadata
            flag = meta["flag"] or "--" + spec.name.replace("_", "-")
            f = click.option(flag, spec.name, default=spec.default, show_default=spec.default is not None,
                             help=meta["help"], **meta["click"])(f)
        return f
    return apply


def given(ctx: click.Context, values: dict) -> dict:
    """The options the user typed: the API's defaults (which --help shows) fill in the rest."""
    return {name: value for name, value in values.items()
            if ctx.get_parameter_source(name) != click.core.ParameterSource.DEFAULT}


JSON = click.option("--json", "json_to", is_flag=False, flag_value="-", metavar="[FILE|-]",
                    help="The result as JSON: alone or with -, on stdout instead of the text; with FILE, into FILE.")
DATA = click.option("--data", type=click.Path(path_type=Path), help="Folder with one sub-folder of images per class.")
TRAINING = options(
    click.option("--model", default="mobilenetv2", show_default=True, help="Backbone (see --list-models)."),
    click.option("--val", type=click.Path(path_type=Path), help="Validation folder (same classes); else --val-split."),
    click.option("--val-split", default=0.2, show_default=True, help="Fraction of each class held out for validation."),
    click.option("--seed", default=0, show_default=True, help="Seed for the split, shuffling and augmentation."),
    click.option("--weights", default="imagenet", show_default=True, help="imagenet, none, or a weights/Keras model file."),
    click.option("--input-size", type=int, help="Square input size in pixels [the backbone's default]."),
    click.option("--alpha", default=1.0, show_default=True, help="Width multiplier (MobileNets)."),
    click.option("--epochs", default=5, show_default=True, help="Epochs training the head on the frozen backbone."),
    click.option("--fine-tune-epochs", default=5, show_default=True, help="Epochs fine-tuning the top layers."),
    click.option("--fine-tune-layers", default="auto", show_default=True, help="Top backbone layers to unfreeze, "
                 "or auto: chosen from the images per class and a linear probe."),
    click.option("--lr", default=1e-3, show_default=True, help="Learning rate of the head phase."),
    click.option("--fine-tune-lr", type=float, help="Learning rate of fine-tuning [with auto "
                 "layers: chosen with them; else --lr / 10]."),
    click.option("--batch-size", default=32, show_default=True),
    click.option("--augment/--no-augment", default=True, show_default=True, help="Flips, rotation, zoom, shifts, "
                 "brightness/contrast, cutout while training."),
    click.option("--flip/--no-flip", default=True, show_default=True, help="Mirror images while augmenting; "
                 "--no-flip for digits, text, signs: anything whose mirror image is another class or none."),
    click.option("--prune", type=float, help="Prune to this sparsity (0-1) while fine-tuning."),
)
MODEL_FILE = options(
    click.option("--labels", type=click.Path(path_type=Path),
                 help="Class names of a bare .tflite, one a line in output order."),
    click.option("--input-range", help="Float range a bare .tflite expects for pixels 0..255, e.g. -1,1 or 0,1 [0,255]."),
    click.option("--threads", type=int, help="Interpreter threads [all cores]."),
)
BUDGET = options(
    click.option("--max-drop", type=float, help="Most accuracy the exported file may lose against the model it comes "
                 "from, on the validation images; int8 keeps the operations that hurt most higher to hold it [0.01]."),
    click.option("--fallback", help="What int8 keeps those operations in: float (fast on a CPU) or int16 (smaller, "
                 "slower) [float]."),
    click.option("--accept-drop", is_flag=True, help="Write the nearest result found even if it misses --max-drop."),
)
DELEGATE = click.option("--delegate", help="Run on a hardware accelerator: edgetpu [the CPU; the Edge TPU for "
                        "*_edgetpu.tflite files].")


def json_destination(json_to: str | None) -> Path | None:
    """The file --json names, checked before any work; None for none or stdout (-)."""
    return check_writable(json_to, "--json") if json_to not in (None, "-") else None


def emit(result, json_to: str | None, as_text) -> None:
    """Write the result to the --json file, and print it: as JSON for --json / --json -, else as text."""
    if json_to not in (None, "-"):
        write_json(json_to, result)
    click.echo(json.dumps(result, indent=2) if json_to == "-" else as_text(result))


@cli.command()
@click.option("--data", type=click.Path(path_type=Path), multiple=True, help="Folder with one sub-folder of images "
              "per class; again for more folders, whose classes merge by name (e.g. --data photos --data "
              "field-frames, from edge frames export).")
@TRAINING
@click.option("--out", type=click.Path(path_type=Path),
              help="Bundle folder to write [bundles/MODEL-DEVICE, else bundles/MODEL-QUANTIZE].")
@click.option("--quantize", help="float32, float16, dynamic or int8 [the --device's, else int8].")
@click.option("--device", help="Convert for this device profile (edge devices list): its quantization, and for "
              "Coral the Edge TPU compiler.")
@click.option("--io-type", help="uint8, int8 or float32 [uint8 for int8, else float32].")
@click.option("--qat", is_flag=True, help="Quantization-aware training instead of post-training quantization.")
@BUDGET
@click.option("--allow-weak", is_flag=True, help="Write the bundle even if the model is no better than guessing "
              "(always answering the most common class) on the validation images.")
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
@click.option("--out", type=click.Path(path_type=Path), help="Bundle folder to write (required).")
@click.option("--labels", type=click.Path(path_type=Path),
              help="Class names of a bare .tflite, one a line in output order.")
@click.option("--input-range", help="Float range a bare .tflite expects for pixels 0..255, e.g. -1,1 or 0,1 [0,255].")
@click.option("--calibration", type=click.Path(path_type=Path), help="Folder of images to calibrate on [--data].")
@click.option("--calibration-images", type=int, help="Images to calibrate on [200].")
@click.option("--seed", type=int, help="Seed of the calibration sample [0].")
@click.option("--io-type", help="uint8, int8 or float32 [the --device's, else uint8].")
@click.option("--device", help="Quantize for this device profile (edge devices list); Coral: compile for the "
              "Edge TPU.")
@BUDGET
@JSON
@click.option("--plot", type=click.Path(path_type=Path), help="Write the error per operation, those kept higher "
              "marked, to this .png/.svg/.pdf.")
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


@cli.command()
@click.option("--out", default="edge-demo", show_default=True, type=click.Path(path_type=Path))
@JSON
def demo(out, json_to):
    """The embedded demo end to end: convert 600 scanned digits (4 classes) with MobileNetV2 to an int8
    bundle, then evaluate it on the 120 scans it never saw."""
    json_destination(json_to)
    result = edge.demo(out, log=Log())
    emit(result, json_to, lambda r: render.demo_text(r["convert"], r["eval"], r["convert"]["bundle"], r["test_data"]))


@cli.command("eval")
@click.argument("model", type=click.Path(path_type=Path))
@DATA
@MODEL_FILE
@DELEGATE
@click.option("--top-k", type=int, help="Also report top-K accuracy [top-1, and top-5 with at least 5 classes].")
@click.option("--batch", default=1, show_default=True, help="Images per invoke.")
@click.option("--warmup", default=WARMUP, show_default=True, help="Runs after the first left out of the latency statistics.")
@JSON
@click.option("--plot", type=click.Path(path_type=Path), help="Write the confusion matrices and latency histogram "
              "to this .png/.svg/.pdf.")
@click.option("--fingerprint", is_flag=True, help="Keep the model's scores on --data (its validation images) as its "
              "fingerprint, which edge run watches drift against: in the bundle's edge.json, or in "
              "NAME.fingerprint.json beside a bare .tflite.")
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
@TRAINING
@click.option("--variants", help="Exports of one trained --model to compare: float32, float16, dynamic, int8, "
              "int8-pruned, int8-qat [all but int8-qat].")
@MODEL_FILE
@click.option("--rounds", default=ROUNDS, show_default=True, help="Latency rounds in which the models take turns "
              "(50 images each); 0: one pass, during evaluation.")
@click.option("--out", default=".", show_default=True, type=click.Path(path_type=Path),
              help="Folder for bench.json and bench.csv.")
@JSON
@click.pass_context
def bench(ctx, models, data, variants, labels, input_range, threads, rounds, out, json_to, **training):
    """Compare exports: train --model once and export each of --variants, or compare existing bundles and
    .tflite files (MODELS) on --data. Prints one table; writes bench.json and bench.csv."""
    from edge.eval.bench import check_out, write_results

    out = check_out(out)
    json_destination(json_to)
    result = edge.bench(models, data, variants=variants, labels=labels, input_range=input_range, threads=threads,
                        rounds=rounds, log=Log(), **given(ctx, training))
    json_file, csv_file = write_results(result, out)
    emit(result, json_to, lambda r: f"{render.bench_text(r)}\n\nwrote {json_file} and {csv_file}")


@cli.command("run")
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--source", default="0", show_default=True, envvar="EDGE_SOURCE", help="Camera index, /dev/videoN, "
              "video file, stream URL (rtsp://, http://), folder of images, GStreamer pipeline, or imx500 (the AI "
              "Camera's sensor runs the bundle's network.rpk) [$EDGE_SOURCE: a URL with a password stays out of ps].")
@click.option("--camera-mode", help="Ask the camera for WIDTHxHEIGHT[@FPS][/FOURCC], e.g. 1280x720@30/MJPG "
              "(USB cameras: MJPG reaches higher rates than the default YUYV).")
@MODEL_FILE
@DELEGATE
@click.option("--top-k", default=3, show_default=True, help="Classes per frame in the log.")
@click.option("--threshold", type=float, help="Below this score the frame is 'unknown'.")
@click.option("--smooth", default=1, show_default=True, help="Average the scores of the last N frames.")
@click.option("--max-frames", type=int, help="Stop after N frames.")
@click.option("--duration", type=float, help="Stop after S seconds.")
@click.option("--realtime", is_flag=True, help="Pace a video file like a camera (newest frame only, drops counted).")
@click.option("--decode", default="fast", show_default=True, help="fast: decode MJPG frames at the smallest JPEG "
              "scale that covers the model's input and resize in steps; full: decode every frame whole and "
              "area-resize it, as training did (slower; to check the fast path).")
@click.option("--truth", help="Field evaluation: the label of everything seen in this session.")
@click.option("--truth-schedule", type=click.Path(path_type=Path),
              help='Field evaluation: JSON list of {"start_frame", "end_frame", "label"} or {"start_s", "end_s", "label"}.')
@click.option("--preview", is_flag=True, help="Show the frames with the prediction in a window; number keys set the "
              "truth (1 = first label, 0 = none), q quits. Needs a display and a non-headless OpenCV.")
@click.option("--log", "log_file", type=click.Path(path_type=Path), help="Write one JSON record a frame (JSONL).")
@JSON
@click.option("--report-to", help="Send a report every --report-every seconds to this edge serve host, "
              "e.g. http://192.168.1.10:8765.")
@click.option("--token", envvar="EDGE_TOKEN", help="The device's token (edge token create on the host) "
              "[$EDGE_TOKEN: set it there, since other users see a command line in ps].")
@click.option("--device-id", envvar="EDGE_DEVICE_ID", help="The name the token was made for [$EDGE_DEVICE_ID].")
@click.option("--report-every", default=10.0, show_default=True, help="Seconds each report covers.")
@click.option("--outbox", default=str(DEFAULT_OUTBOX), show_default=True, type=click.Path(path_type=Path),
              help="Where reports wait until the host has them.")
@click.option("--collect", help="Send the host the frames that matter, as JPEG with the model's scores, to label and "
              "train on: uncertain[:MARGIN] (the call's margin over the next class below MARGIN [below what 4 in 5 "
              "validation images had, from the fingerprint; else 0.2]), wrong (the call is not the truth), disagree "
              "(a frame's call differs from the one its 5 predecessors agreed on), or every:N (every Nth frame).")
@click.option("--collect-max-per-hour", type=float, help=f"Most frames kept in any hour [{MAX_PER_HOUR}].")
@click.option("--collect-store", type=click.Path(path_type=Path), help=f"Where collected frames wait until the host "
              f"has them [{STORE}].")
@click.option("--collect-store-mb", type=float, help=f"Most MB the store holds; the oldest frames go first, counted "
              f"[{STORE_MB:g}].")
@click.option("--drift-thresholds", default=f"{THRESHOLDS[0]},{THRESHOLDS[1]}", show_default=True,
              help="WATCH,DRIFT: the population stability index against the model's fingerprint from which a window "
              "is at watch, and at drift.")
@click.option("--drift-min-frames", default=MIN_FRAMES, show_default=True, help="Fewer frames in a window: too few "
              "to judge drift.")
def run_command(model, json_to, **options):
    """Classify camera frames on the device, and evaluate live against ground truth."""
    json_destination(json_to)
    emit(edge.run(model, log=Log(), **options), json_to, render.run_text)


@cli.command()
@options_of("edge.server.options:ServeOptions")
def serve(**options):
    """Collect device reports and frames, and show them: the HTTP API and dashboard, where collected frames are
    labelled."""
    with host_only("edge serve", extra="serve"):
        from edge.server.options import ServeOptions
        from edge.server.workers import run_server

    run_server(ServeOptions(**options), log=lambda m: click.echo(m, err=True))


@cli.group("frames")
def frames_group():
    """Frames the devices collected (edge run --collect) and people labelled on the dashboard."""


@frames_group.command("export")
@click.option("--db", default="edge.db", show_default=True, type=click.Path(path_type=Path),
              help="The database edge serve stores into.")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="A new folder: one sub-folder of JPEGs "
              "a label.")
@click.option("--device", help="Only this device's frames [every device's].")
@JSON
def frames_export(db, out, device, json_to):
    """Write the labelled frames as an image-folder data set, for edge convert --data ORIGINAL --data OUT."""
    json_destination(json_to)
    emit(edge.export_frames(db, out, device), json_to, render.frames_export_text)


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
@click.option("--token", default="", help="The device's token (one per device: edge token create) [or later in "
              "/etc/edge/edge.conf].")
@click.option("--source", help="The camera or stream edge run reads [imx500 for rpi-ai-camera, else 0].")
@click.option("--args", "extra", default="", help="More edge run options, e.g. '--truth mug --smooth 5'.")
def package_command(bundle, device, out, report_to, device_id, token, source, extra):
    """One .tar.gz that sets a device up: bundle, device install, setup script, systemd unit, config."""
    with host_only("edge package"):
        from edge.devices.package import package

    result = package(bundle, device, out, source, report_to, device_id, token, extra,
                     log=lambda m: click.echo(m, err=True))
    click.echo(render.package_text(result))


@cli.group()
def token():
    """Tokens for devices (to send reports) and readers (of a --protect-reads dashboard)."""


DB = click.option("--db", default="edge.db", show_default=True, type=click.Path(path_type=Path))


@token.command("create")
@click.argument("name")
@DB
@click.option("--reader", is_flag=True, help="A token that reads the dashboard and API, and cannot write.")
def token_create(name, db, reader):
    """Make a token for device NAME (or reader NAME), printed once: only its hash is kept."""
    with host_only("edge token"):
        from edge.server import store

    secret = store.create_token(store.open_db(db), name, "reader" if reader else "device")
    click.echo(secret)
    if not reader:
        click.echo(f"on the device: edge run BUNDLE --report-to http://HOST:8765 --device-id {name} "
                   "--token TOKEN (or EDGE_TOKEN=TOKEN); it is not shown again", err=True)


@token.command("revoke")
@click.argument("name")
@DB
def token_revoke(name, db):
    """Revoke NAME's token at once: its requests get 401 from then on."""
    with host_only("edge token"):
        from edge.server import store

    store.revoke_token(store.open_db(db), name)
    click.echo(f"revoked {name}", err=True)


@token.command("list")
@DB
def token_list(db):
    """Names and roles that have tokens (never the tokens)."""
    with host_only("edge token"):
        from edge.server import store

    click.echo(render.tokens_text(store.list_tokens(store.open_db(db))))


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
