"""`edge eval --plot`: the confusion matrix (counts, and normalized by true class) and a latency
histogram in one image. matplotlib is imported only here, only when a plot is asked for."""

import io
from pathlib import Path

import numpy as np

from edge.errors import EdgeError
from edge.files import check_writable, write_atomic
from edge.results import EvalResult
from edge.version import install_hint

FORMATS = (".png", ".svg", ".pdf")
ANNOTATE_UP_TO = 20  # classes; beyond that the numbers in the cells are unreadable


def check_plot_path(path) -> Path:
    """A file the plot can go to, and matplotlib to draw it: checked before any long work."""
    path = check_writable(path, "--plot", FORMATS)
    pyplot()
    return path


def pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise EdgeError(f"--plot needs matplotlib: {install_hint('plot')} (or leave out --plot)") from None
    return plt


def save_plot(report: EvalResult, times_ms, path) -> Path:
    plt = pyplot()
    cm = np.asarray(report.confusion_matrix)
    labels = report.labels
    rows = cm.sum(axis=1, keepdims=True)
    normalized = np.divide(cm, rows, out=np.zeros(cm.shape), where=rows > 0)
    side = min(4 + 0.35 * len(labels), 14)
    fig, axes = plt.subplots(1, 3, figsize=(3 * side, side), gridspec_kw={"width_ratios": [1, 1, 0.8]})
    _matrix(axes[0], cm, labels, "counts", "d")
    _matrix(axes[1], normalized, labels, "normalized by true class (recall on the diagonal)", ".2f")
    _latency(axes[2], report, times_ms)
    fig.suptitle(
        f"{Path(report.model).name}: accuracy {report.accuracy:.4f}, "
        f"macro F1 {report.macro['f1']:.4f} on {report.n} images"
    )
    return save_figure(fig, path)


def save_figure(fig, path) -> Path:
    """Lay out, render in the format the path's suffix names, and write atomically."""
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format=Path(path).suffix.lower()[1:], dpi=100)
    pyplot().close(fig)
    return write_atomic(path, buffer.getvalue())


def _matrix(ax, values, labels, title, fmt):
    image = ax.imshow(values, cmap="Blues")
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ticks = np.arange(len(labels))
    if len(labels) <= 60:
        ax.set_xticks(ticks, labels, rotation=90)
        ax.set_yticks(ticks, labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if len(labels) <= ANNOTATE_UP_TO:
        high = values.max() / 2 if values.size else 0
        for (i, j), v in np.ndenumerate(values):
            ax.text(j, i, format(v, fmt), ha="center", va="center", fontsize=8, color="white" if v > high else "black")


def _latency(ax, report: EvalResult, times_ms):
    lat = report.latency_ms
    steady = np.asarray(times_ms[1 + lat["warmup"] :])
    if len(steady):
        ax.hist(steady, bins=min(50, max(5, len(steady) // 4)), color="tab:blue")
        for name, style in (("p50", "-"), ("p90", "--"), ("p99", ":")):
            ax.axvline(lat[name], color="black", linestyle=style, label=f"{name} {lat[name]:.2f} ms")
        ax.legend()
    ax.set_xlabel(f"ms per invoke (batch {lat['batch']})")
    ax.set_ylabel("invokes")
    ax.set_title(f"latency: first {lat['first']:.2f} ms, {lat['runs']} runs after {lat['warmup']} warm-up")
