"""The `edge` command: a thin click layer over the Python API.

User errors (EdgeError, bad options) print one line on stderr and exit with code 2, no traceback.
"""
import json
import sys
import time
from pathlib import Path

import click

import edge
from edge import __version__
from edge.errors import EdgeError
from edge.files import check_writable, write_json
from edge.progress import Log
from edge.reporter import DEFAULT_OUTBOX, ReportOptions
from eval.bench import DEFAULT_VARIANTS, ROUNDS, VARIANTS
from eval.evaluate import WARMUP


@click.group()
@click.version_option(__version__, prog_name="edge")
def cli():
    """Take a vision model from a laptop to a Raspberry Pi or a Coral board, and prove how well it works there."""


def options(*decorators):
    """Apply a list of click options, so commands that share options declare them once."""
    def apply(f):
        for decorator in reversed(decorators):
            f = decorator(f)
        return f
    return apply


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
    click.option("--fine-tune-layers", type=int, help="Top backbone layers to unfreeze [backbone-specific]."),
    click.option("--lr", default=1e-3, show_default=True, help="Learning rate of the head phase."),
    click.option("--fine-tune-lr", type=float, help="Learning rate of fine-tuning [--lr / 10]."),
    click.option("--batch-size", default=32, show_default=True),
    click.option("--augment/--no-augment", default=True, show_default=True, help="Flips, rotation, zoom, shifts, "
                 "brightness/contrast, cutout while training."),
    click.option("--prune", type=float, help="Prune to this sparsity (0-1) while fine-tuning."),
)
MODEL_FILE = options(
    click.option("--labels", type=click.Path(path_type=Path),
                 help="Class names of a bare .tflite, one a line in output order."),
    click.option("--input-range", help="Float range a bare .tflite expects for pixels 0..255, e.g. -1,1 or 0,1 [0,255]."),
    click.option("--threads", type=int, help="Interpreter threads [all cores]."),
)
DELEGATE = click.option("--delegate", help="Run on a hardware accelerator: edgetpu [the CPU; the Edge TPU for "
                        "*_edgetpu.tflite files].")


@cli.command()
@DATA
@TRAINING
@click.option("--out", type=click.Path(path_type=Path),
              help="Bundle folder to write [bundles/MODEL-DEVICE, else bundles/MODEL-QUANTIZE].")
@click.option("--quantize", help="float32, float16, dynamic or int8 [the --device's, else int8].")
@click.option("--device", help="Convert for this device profile (edge devices list): its quantization, and for "
              "Coral the Edge TPU compiler.")
@click.option("--io-type", help="uint8, int8 or float32 [uint8 for int8, else float32].")
@click.option("--qat", is_flag=True, help="Quantization-aware training instead of post-training quantization.")
@click.option("--max-drop", default=0.01, show_default=True, help="Warn if int8 accuracy falls more than this below Keras.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@click.option("--list-models", is_flag=True, help="List the backbones and exit.")
def convert(data, out, as_json, list_models, **options):
    """Fine-tune a backbone on image folders, prune, quantize, and export a TFLite bundle."""
    if list_models:
        click.echo(models_table())
        return
    need_data(data)
    out = out or Path("bundles") / f"{options['model']}-{options['device'] or options['quantize'] or 'int8'}"
    summary = edge.convert(data=data, out=out, log=Log(), **options)
    click.echo(json.dumps(summary, indent=2) if as_json else summary_text(summary))


@cli.command()
@click.option("--out", default="edge-demo", show_default=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
def demo(out, as_json):
    """The embedded demo end to end: convert 600 scanned digits (4 classes) with MobileNetV2 to an int8
    bundle, then evaluate it on the 120 scans it never saw."""
    from convert.demo import write_digits

    photos, unseen = write_digits(out / "photos"), write_digits(out / "test", per_class=None, skip=150)
    click.echo(f"wrote the demo images to {photos} (training) and {unseen} (test)", err=True)
    summary = edge.convert(model="mobilenetv2", data=photos, out=out / "bundle", weights="none", input_size=96,
                           epochs=8, fine_tune_epochs=0, log=Log())
    report = edge.evaluate(out / "bundle", unseen, log=Log()).report
    if as_json:
        click.echo(json.dumps({"convert": summary, "eval": report}, indent=2))
    else:
        click.echo(f"{summary_text(summary)}\n\n$ edge eval {out / 'bundle'} --data {unseen}\n{eval_text(report)}")


@cli.command("eval")
@click.argument("model", type=click.Path(path_type=Path))
@DATA
@MODEL_FILE
@DELEGATE
@click.option("--top-k", type=int, help="Also report top-K accuracy [top-1, and top-5 with at least 5 classes].")
@click.option("--batch", default=1, show_default=True, help="Images per invoke.")
@click.option("--warmup", default=WARMUP, show_default=True, help="Runs after the first left out of the latency statistics.")
@click.option("--json", "json_path", help="Write the report as JSON to this file (- for stdout).")
@click.option("--plot", type=click.Path(path_type=Path), help="Write the confusion matrices and latency histogram "
              "to this .png/.svg/.pdf.")
def eval_command(model, data, labels, input_range, threads, delegate, top_k, batch, warmup, json_path, plot):
    """Accuracy, precision, recall, F1, confusion matrix, top-k and latency of a bundle or a .tflite file."""
    from eval.plots import check_plot_path, save_plot

    need_data(data)
    plot = check_plot_path(plot) if plot else None
    json_file = json_destination(json_path)
    result = edge.evaluate(model, data, labels=labels, input_range=parse_range(input_range), threads=threads,
                           top_k=top_k, batch=batch, warmup=warmup, delegate=delegate, log=Log())
    if plot:
        save_plot(result.report, result.times_ms, plot)
    emit(result.report, json_path, json_file, eval_text)


@cli.command()
@click.argument("models", nargs=-1, type=click.Path(path_type=Path))
@DATA
@TRAINING
@click.option("--variants", default=",".join(DEFAULT_VARIANTS), show_default=True,
              help=f"Exports of one trained --model to compare: {', '.join(VARIANTS)}.")
@MODEL_FILE
@click.option("--rounds", default=ROUNDS, show_default=True, help="Latency rounds in which the models take turns "
              "(50 images each); 0: one pass, during evaluation.")
@click.option("--out", default=".", show_default=True, type=click.Path(path_type=Path),
              help="Folder for bench.json and bench.csv.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON on stdout.")
@click.pass_context
def bench(ctx, models, data, variants, labels, input_range, threads, rounds, out, as_json, **training):
    """Compare exports: train --model once and export each of --variants, or compare existing bundles and
    .tflite files (MODELS) on --data. Prints one table; writes bench.json and bench.csv."""
    from eval.bench import check_out, write_results

    need_data(data)
    out = check_out(out)
    if rounds < 0:
        raise EdgeError(f"--rounds {rounds} cannot be negative")
    given = [name for name in ("variants", *training) if ctx.get_parameter_source(name).name != "DEFAULT"]
    if models and given:
        raise EdgeError(f"--{given[0].replace('_', '-')} is for training a --model; with bundle or .tflite "
                        "arguments, leave it out")
    if not models and (labels or input_range):
        raise EdgeError("--labels and --input-range are for bare .tflite arguments, not for --model")
    result = edge.bench(models, data, variants=variants, labels=labels, input_range=parse_range(input_range),
                        threads=threads, rounds=rounds, log=Log(), **training)
    json_file, csv_file = write_results(result, out)
    click.echo(json.dumps(result, indent=2) if as_json else f"{bench_text(result)}\n\nwrote {json_file} and {csv_file}")


@cli.command("run")
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--source", default="0", show_default=True, help="Camera index, /dev/videoN, video file, stream URL "
              "(rtsp://, http://), folder of images, or GStreamer pipeline.")
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
@click.option("--truth", help="Field evaluation: the label of everything seen in this session.")
@click.option("--truth-schedule", type=click.Path(path_type=Path),
              help='Field evaluation: JSON list of {"start_frame", "end_frame", "label"} or {"start_s", "end_s", "label"}.')
@click.option("--preview", is_flag=True, help="Show the frames with the prediction in a window; number keys set the "
              "truth (1 = first label, 0 = none), q quits. Needs a display and a non-headless OpenCV.")
@click.option("--log", "log_file", type=click.Path(path_type=Path), help="Write one JSON record a frame (JSONL).")
@click.option("--json", "json_path", help="Write the summary as JSON to this file (- for stdout).")
@click.option("--report-to", help="Send a report every --report-every seconds to this edge serve host, "
              "e.g. http://192.168.1.10:8765.")
@click.option("--token", envvar="EDGE_TOKEN", help="The device's token (edge token create on the host) [$EDGE_TOKEN].")
@click.option("--device-id", envvar="EDGE_DEVICE_ID", help="The name the token was made for [$EDGE_DEVICE_ID].")
@click.option("--report-every", default=10.0, show_default=True, help="Seconds each report covers.")
@click.option("--outbox", default=str(DEFAULT_OUTBOX), show_default=True, type=click.Path(path_type=Path),
              help="Where reports wait until the host has them.")
def run_command(model, source, labels, input_range, json_path, report_to, token, device_id, report_every, outbox,
                **options):
    """Classify camera frames on the device, and evaluate live against ground truth."""
    from edge.run import RunOptions, run

    json_file = json_destination(json_path)
    reporting = ReportOptions(report_to, token, device_id, report_every, outbox) if report_to else None
    if not report_to and (token or device_id):
        raise EdgeError("--token and --device-id are for reporting: add --report-to URL")
    summary = run(model, source, RunOptions(labels=labels, input_range=parse_range(input_range), **options), Log(),
                  reporting)
    emit(summary, json_path, json_file, run_text)


@cli.command()
@click.option("--db", default="edge.db", show_default=True, type=click.Path(path_type=Path),
              help="SQLite file the reports go into (created if new).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every interface).")
@click.option("--port", default=8765, show_default=True)
@click.option("--max-body", default=1_000_000, show_default=True, help="Largest request body taken, in bytes.")
@click.option("--protect-reads", is_flag=True, help="The dashboard and read API need a token too (edge token create "
              "NAME --reader).")
def serve(db, host, port, max_body, protect_reads):
    """Collect device reports and show them: the HTTP API and dashboard."""
    try:
        from edge.server.app import ServeOptions, run_server
    except ImportError:
        raise EdgeError("edge serve needs the serve extra: pip install 'edge[serve]'") from None
    run_server(ServeOptions(db, max_body, protect_reads), host, port, log=lambda m: click.echo(m, err=True))


@cli.group("devices")
def devices_group():
    """The boards edge knows: what each needs and gets."""


@devices_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON.")
def devices_list(as_json):
    """One line a device profile."""
    from dataclasses import asdict

    from devices.profiles import PROFILES

    if as_json:
        click.echo(json.dumps([asdict(p) for p in PROFILES.values()], indent=2))
        return
    rows = [("name", "board", "arch", "runtime", "model", "threads")]
    rows += [(p.name, p.title, p.arch, p.runtime, f"{p.quantize}, {p.io_type} IO" + (" (required)" if p.requires_int8
             else ""), "all" if p.threads is None else str(p.threads)) for p in PROFILES.values()]
    click.echo(table(rows))


@devices_group.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the profile as JSON.")
def devices_show(name, as_json):
    """Everything about one device profile, with published reference latencies."""
    from dataclasses import asdict

    from devices.profiles import get_profile

    p = get_profile(name)
    if as_json:
        click.echo(json.dumps(asdict(p), indent=2))
        return
    lines = [f"{p.name}: {p.title}", f"arch       {p.arch}", f"os         {p.os}, Python {p.python}",
             f"runtime    {p.runtime}" + (f", delegate {p.delegate}" if p.delegate else ""),
             f"model      {p.quantize} with {p.io_type} IO" + (", required" if p.requires_int8 else ", recommended")
             + (f"; compiled by {p.compiler}" if p.compiler else ""),
             f"threads    {'all cores' if p.threads is None else p.threads}", f"camera     {p.camera}",
             f"setup      apt: {' '.join(p.apt)}; groups: {' '.join(p.groups)}", f"notes      {p.notes}", "",
             "reference latencies (published):"]
    rows = [("model", "input", "ms", "on", "source")]
    rows += [(r.model, str(r.input), f"{r.ms:g}", r.where, r.source) for r in p.references]
    click.echo("\n".join(lines) + "\n" + table(rows))


@devices_group.command("compile")
@click.argument("bundle", type=click.Path(path_type=Path))
def devices_compile(bundle):
    """Compile a full-int8 bundle for the Edge TPU with edgetpu_compiler, keeping model_edgetpu.tflite in it."""
    from devices.edgetpu import compile_bundle

    record = compile_bundle(bundle)
    summary = record["compiler"]
    click.echo(f"{bundle}: {summary['on_tpu']} of {summary['operations']} operations on the Edge TPU, "
               f"{(summary['on_chip_bytes'] or 0) / 2**20:.2f} MiB on-chip, "
               f"{(summary['off_chip_bytes'] or 0) / 2**20:.2f} MiB streamed")
    for warning in record["warnings"]:
        click.echo(f"warning: {warning}", err=True)


@cli.command("package")
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--device", required=True, help="Device profile (edge devices list).")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="The .tar.gz to write.")
@click.option("--report-to", required=True, help="The edge serve host the device reports to.")
@click.option("--device-id", required=True, help="The device's name (edge token create NAME on the host).")
@click.option("--token", default="", help="The device's token (one per device: edge token create) [or later in "
              "/etc/edge/edge.conf].")
@click.option("--source", default="0", show_default=True, help="The camera or stream edge run reads.")
@click.option("--args", "extra", default="", help="More edge run options, e.g. '--truth mug --smooth 5'.")
def package_command(bundle, device, out, report_to, device_id, token, source, extra):
    """One .tar.gz that sets a device up: bundle, device install, setup script, systemd unit, config."""
    from devices.package import package

    result = package(bundle, device, out, source, report_to, device_id, token, extra,
                     log=lambda m: click.echo(m, err=True))
    click.echo(f"wrote {result['package']} ({result['bytes']:,} bytes) for {result['device']}; on the device: "
               f"tar xzf {Path(result['package']).name} && cd {result['top']} && sudo ./setup.sh")


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
    from edge.server import store

    store.revoke_token(store.open_db(db), name)
    click.echo(f"revoked {name}", err=True)


@token.command("list")
@DB
def token_list(db):
    """Names and roles that have tokens (never the tokens)."""
    from edge.server import store

    rows = [("name", "role", "created")]
    rows += [(t["name"], t["role"], time.strftime("%Y-%m-%d %H:%M", time.localtime(t["created"])))
             for t in store.list_tokens(store.open_db(db))]
    click.echo(table(rows))


def run_text(s: dict) -> str:
    inference, frame = s["latency_ms"]["inference"], s["latency_ms"]["frame"]
    fps = f"{s['fps']:.1f} fps" if s["fps"] else "one frame"
    mode = f" ({s['source_mode']})" if s.get("source_mode") else ""
    lines = [f"frames     {s['frames']} from {s['source']}{mode} in {s['seconds']:.1f} s ({fps}); dropped {s['dropped']}, "
             f"failed reads {s['failures']}, reopened {s['reopens']}; peak memory {s['peak_rss_mb']:.0f} MB"]
    if inference["runs"]:
        lines.append(f"latency    inference p50 {inference['p50']:.2f} ms (p99 {inference['p99']:.2f}); "
                     f"capture to result p50 {frame['p50']:.2f} ms (p99 {frame['p99']:.2f})")
    if s.get("reporting"):
        r = s["reporting"]
        lines.append(f"reported   {r['reports']} reports; sent {r['sent']}, waiting {r['pending']} in {r['outbox']}, "
                     f"dropped {r['dropped']}, refused {r['rejected']}"
                     + (f"; last error: {r['last_error']}" if r["last_error"] else ""))
    if s["evaluated"]:
        lines += ["", metrics_text(s)]
    lines += [f"note       {note}" for note in s["notes"]]
    return "\n".join(lines)


def bench_text(result: dict) -> str:
    ok = [r for r in result["rows"] if r["status"] == "ok"]
    base = ok[0] if ok else None
    keras = any(r["keras_accuracy"] is not None for r in ok)  # variants: the Keras model each came from
    rows = [("variant" if result["kind"] == "variants" else "model", "status", "bytes", "gzip",
             *(("Keras acc",) if keras else ()), "accuracy", "macro F1", "agreement", "p50 ms", "FPS", "smaller",
             "faster")]
    for r in result["rows"]:
        if r["status"] != "ok":
            rows.append((r["name"], "failed", *[""] * (len(rows[0]) - 2)))
            continue
        agreement = "" if r["agreement"] is None else f"{r['agreement']:.4f}"
        rows.append((r["name"], "ok", f"{r['bytes']:,}", f"{r['gzip_bytes']:,}",
                     *((f"{r['keras_accuracy']:.4f}",) if keras else ()), f"{r['accuracy']:.4f}",
                     f"{r['macro_f1']:.4f}", agreement, f"{r['p50_ms']:.2f}", f"{r['fps']:.1f}",
                     f"{base['bytes'] / r['bytes']:.2f}x", f"{base['p50_ms'] / r['p50_ms']:.2f}x"))
    if result["kind"] == "variants":
        head = (f"{result['model']} @ {result['input_size']}px: trained on {result['images']['train']} images, "
                f"evaluated on {result['images']['validation']} validation images")
    else:
        head = f"on {result['data']}"
    lines = [head, table(rows)]
    if base:
        lines.append(f"smaller / faster: against {base['name']}; agreement: with {result['agreement_with']}")
    lines += [f"{r['name']} failed: {r['reason']}" for r in result["rows"] if r["status"] != "ok"]
    lines += [f"{r['name']}: measured sparsity {r['sparsity']:.3f}" for r in ok if r.get("sparsity") is not None]
    return "\n".join(lines)


def json_destination(json_path: str | None) -> Path | None:
    """The file --json names, checked before any work; None for none or stdout (-)."""
    return check_writable(json_path, "--json") if json_path not in (None, "-") else None


def emit(result: dict, json_path: str | None, json_file: Path | None, as_text) -> None:
    """Write the result to the --json file, and print it: as JSON for --json -, else as text."""
    if json_file:
        write_json(json_file, result)
    click.echo(json.dumps(result, indent=2) if json_path == "-" else as_text(result))


def need_data(data) -> None:
    if data is None:
        raise EdgeError("--data is required: a folder with one sub-folder of images per class")


def parse_range(text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    try:
        lo, hi = (float(part) for part in text.split(","))
    except ValueError:
        raise EdgeError(f"--input-range {text}: give two numbers LO,HI, e.g. -1,1 or 0,1 or 0,255") from None
    return lo, hi


def metrics_text(r: dict) -> str:
    """The per-class table, the averages and the accuracy line, as `edge eval` and `edge run` print them."""
    rows = [("class", "precision", "recall", "f1", "support")]
    rows += [(label, f"{c['precision']:.4f}", f"{c['recall']:.4f}", f"{c['f1']:.4f}", str(c["support"]))
             for label, c in r["per_class"].items()]
    rows.append(("", "", "", "", ""))
    rows += [(f"{name} avg", f"{r[name]['precision']:.4f}", f"{r[name]['recall']:.4f}", f"{r[name]['f1']:.4f}",
              str(r["n"])) for name in ("macro", "weighted")]
    top = ", ".join(f"top-{k} {v:.4f}" for k, v in r["top_k_accuracy"].items() if k != "1")
    return f"{table(rows)}\n\naccuracy   {r['accuracy']:.4f} on {r['n']} images" + (f" ({top})" if top else "")


def eval_text(r: dict) -> str:
    lat = r["latency_ms"]
    lines = [metrics_text(r)]
    if lat["runs"]:
        lines.append(f"latency    p50 {lat['p50']:.2f} ms, p90 {lat['p90']:.2f}, p99 {lat['p99']:.2f}, "
                     f"mean {lat['mean']:.2f} ({r['fps']:.1f} images/s); first {lat['first']:.2f} ms, "
                     f"{lat['runs']} runs after {lat['warmup']} warm-up")
    else:
        lines.append(f"latency    first {lat['first']:.2f} ms; too few images for steady-state numbers")
    lines.append(f"model      {r['model']}: {r['model_bytes']:,} bytes, {r['input']['dtype']} input "
                 f"{r['input']['size'][0]}x{r['input']['size'][1]}, {r['runtime']}, {r['threads']} threads, "
                 f"batch {r['batch']}; reading an image {r['preprocess_ms']['mean']:.2f} ms")
    skipped = r["skipped"]
    if skipped["count"]:
        shown = "; ".join(f"{f['path']} ({f['why']})" for f in skipped["files"][:3])
        more = f" and {skipped['count'] - 3} more" if skipped["count"] > 3 else ""
        lines.append(f"skipped    {skipped['count']} file(s): {shown}{more}")
    lines += [f"note       {note}" for note in r["notes"]]
    return "\n".join(lines)


def models_table() -> str:
    from convert.backbones import BACKBONES

    rows = [("name", "input", "params", "preprocessing", "fine-tune layers")]
    rows += [(b.name, str(b.input_size), f"{b.params_m:.1f}M", b.preprocessing, str(b.fine_tune_layers))
             for b in BACKBONES.values()]
    return table(rows)


def table(rows) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()
                     for r in rows)


def summary_text(s: dict) -> str:
    m, q, b = s["metrics"], s["quantization"], s["backbone"]
    lines = [
        f"bundle     {s['bundle']}",
        f"model      {b['name']} {b['input_size']}px, {q['mode']} (io {q['io_type']}), "
        f"{s['model']['bytes']:,} bytes (gzip {s['model']['gzip_bytes']:,})",
        "",
        table([("validation", "accuracy", "macro F1"),
               ("keras", f"{m['keras']['accuracy']:.4f}", f"{m['keras']['macro_f1']:.4f}"),
               (f"tflite {q['mode']}", f"{m['tflite']['accuracy']:.4f}", f"{m['tflite']['macro_f1']:.4f}")]),
        f"agreement  {m['agreement']:.4f} on {m['n']} images",
        f"latency    p50 {m['host_latency_ms']['p50']:.2f} ms on this host (run 'edge eval' on the device for its own)",
    ]
    if s["sparsity"]:
        lines.append(f"sparsity   {s['sparsity']['sparsity']:.3f} (target {s['sparsity']['target']})")
    for phase in s["training"]["phases"]:
        cache = phase.get("feature_cache")
        extra = f", cached features ~{cache['estimated_speedup']}x faster" if cache else ""
        lines.append(f"trained    {phase['phase']}: {phase['epochs']} epochs, {phase['seconds']} s{extra}")
    lines.append(f"time       {s['training']['seconds']} s")
    lines += [f"WARNING    {w}" for w in s["warnings"] + (s.get("edgetpu") or {}).get("warnings", [])]
    return "\n".join(lines)


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
