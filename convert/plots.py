"""`edge quantize --plot`: the quantizer's error per operation (what quantizing it adds, and at its output)
in execution order, the operations kept higher marked."""

from pathlib import Path

import numpy as np

from edge.eval.plots import pyplot, save_figure
from edge.results import QuantizeResult


def save_error_plot(summary: QuantizeResult, path) -> Path:
    plt = pyplot()
    rows = summary.per_operation
    budget = summary.quantization["budget"]
    index = np.arange(len(rows))
    added = np.array([r["added"] for r in rows])
    error = np.array([r["error"] for r in rows])
    kept = np.array([r["kept"] is not None for r in rows])
    fig, ax = plt.subplots(figsize=(min(max(8.0, 4 + 0.18 * len(rows)), 24), 5))
    ax.bar(index[~kept], added[~kept], color="tab:blue", label="added by quantizing it (int8)")
    ax.bar(index[kept], added[kept], color="tab:orange", label=f"kept {budget['fallback']}")
    ax.plot(index, error, color="black", linewidth=1, label="at its output (1 - cosine)")
    ax.set_xticks(index, [f"{r['index']} {r['type']}" for r in rows], rotation=90, fontsize=7)
    ax.set_ylabel("plain int8 error against float (1 - cosine similarity)")
    ax.legend()
    ax.set_title(
        f"{summary.backbone['name']}: plain int8 drop {budget['plain_int8']['drop']:.4f}, "
        f"final {budget['drop']:.4f} (--max-drop {budget['max_drop']}),\n{len(budget['kept'])} of "
        f"{budget['operations']} operations kept {budget['fallback']}"
    )
    return save_figure(fig, path)
