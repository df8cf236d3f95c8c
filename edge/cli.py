"""The `edge` command: a thin click layer over the Python API.

User errors (EdgeError, bad options) print one line on stderr and exit with code 2, no traceback.
"""
import json
import sys
from pathlib import Path

import click

import edge
from edge import __version__
from edge.errors import EdgeError
from edge.progress import Log


@click.group()
@click.version_option(__version__, prog_name="edge")
def cli():
    """Take a vision model from a laptop to a Raspberry Pi or a Coral board, and prove how well it works there."""


@cli.command()
@click.option("--model", default="mobilenetv2", show_default=True, help="Backbone (see --list-models).")
@click.option("--data", type=click.Path(path_type=Path), help="Folder with one sub-folder of images per class.")
@click.option("--out", type=click.Path(path_type=Path), help="Bundle folder to write [bundles/MODEL-QUANTIZE].")
@click.option("--val", type=click.Path(path_type=Path), help="Validation folder (same classes); else --val-split.")
@click.option("--val-split", default=0.2, show_default=True, help="Fraction of each class held out for validation.")
@click.option("--seed", default=0, show_default=True, help="Seed for the split, shuffling and augmentation.")
@click.option("--weights", default="imagenet", show_default=True, help="imagenet, none, or a weights/Keras model file.")
@click.option("--input-size", type=int, help="Square input size in pixels [the backbone's default].")
@click.option("--alpha", default=1.0, show_default=True, help="Width multiplier (MobileNets).")
@click.option("--epochs", default=5, show_default=True, help="Epochs training the head on the frozen backbone.")
@click.option("--fine-tune-epochs", default=5, show_default=True, help="Epochs fine-tuning the top layers.")
@click.option("--fine-tune-layers", type=int, help="Top backbone layers to unfreeze [backbone-specific].")
@click.option("--lr", default=1e-3, show_default=True, help="Learning rate of the head phase.")
@click.option("--fine-tune-lr", type=float, help="Learning rate of fine-tuning [--lr / 10].")
@click.option("--batch-size", default=32, show_default=True)
@click.option("--augment/--no-augment", default=True, show_default=True, help="Flips, rotation, zoom, shifts, "
              "brightness/contrast, cutout while training.")
@click.option("--prune", type=float, help="Prune to this sparsity (0-1) while fine-tuning.")
@click.option("--quantize", default="int8", show_default=True, help="float32, float16, dynamic or int8.")
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
    if data is None:
        raise EdgeError("--data is required: a folder with one sub-folder of images per class")
    out = out or Path("bundles") / f"{options['model']}-{options['quantize']}"
    summary = edge.convert(data=data, out=out, log=Log(), **options)
    click.echo(json.dumps(summary, indent=2) if as_json else summary_text(summary))


@cli.command()
@click.option("--out", default="edge-demo", show_default=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
def demo(out, as_json):
    """Convert the embedded demo set (600 scanned digits, 4 classes) end to end: MobileNetV2, int8."""
    from convert.demo import write_digits

    photos = write_digits(out / "photos")
    click.echo(f"wrote the demo images to {photos}", err=True)
    summary = edge.convert(model="mobilenetv2", data=photos, out=out / "bundle", weights="none", input_size=96,
                           epochs=8, fine_tune_epochs=0, log=Log())
    click.echo(json.dumps(summary, indent=2) if as_json else summary_text(summary))


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
    ]
    if s["sparsity"]:
        lines.append(f"sparsity   {s['sparsity']['sparsity']:.3f} (target {s['sparsity']['target']})")
    for phase in s["training"]["phases"]:
        cache = phase.get("feature_cache")
        extra = f", cached features ~{cache['estimated_speedup']}x faster" if cache else ""
        lines.append(f"trained    {phase['phase']}: {phase['epochs']} epochs, {phase['seconds']} s{extra}")
    lines.append(f"time       {s['training']['seconds']} s")
    lines += [f"WARNING    {w}" for w in s["warnings"]]
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
