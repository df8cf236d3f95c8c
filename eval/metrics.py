"""Classification metrics from a confusion matrix (numpy only; runs on the device too).

Zero divisions give 0, never NaN, and the report says where: precision of a class the model never
predicted, recall of a class with no images. As in scikit-learn, the averages cover the classes
that occur in the truth or the predictions; a class with neither is left out and named.
Top-k breaks ties by the lower class index, like argmax, so top-1 accuracy always equals accuracy.
"""

import numpy as np


def confusion_matrix(y_true, y_pred, n_classes: int) -> np.ndarray:
    """Counts, rows = true class, columns = predicted class."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    return np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def accuracy(cm: np.ndarray) -> float:
    total = cm.sum()
    return float(np.trace(cm) / total) if total else 0.0


def _safe_divide(num, den) -> np.ndarray:
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.zeros(num.shape, dtype=np.float64), where=den > 0)


def per_class(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Per-class precision, recall, F1 (2tp / (2tp + fp + fn)) and support."""
    tp = np.diag(cm)
    predicted, support = cm.sum(axis=0), cm.sum(axis=1)
    return {
        "precision": _safe_divide(tp, predicted),
        "recall": _safe_divide(tp, support),
        "f1": _safe_divide(2 * tp, predicted + support),
        "support": support,
    }


def averages(cm: np.ndarray) -> dict[str, dict[str, float]]:
    """Macro, weighted (by support) and micro precision/recall/F1 over the classes present."""
    stats = per_class(cm)
    present = (stats["support"] + cm.sum(axis=0)) > 0
    support = stats["support"][present]
    result = {}
    for average in ("macro", "weighted"):
        weights = np.ones(support.shape) if average == "macro" else support
        total = weights.sum()
        result[average] = {
            m: float((stats[m][present] * weights).sum() / total) if total else 0.0
            for m in ("precision", "recall", "f1")
        }
    micro = accuracy(cm)  # single-label: every miss is one false positive and one false negative
    result["micro"] = {"precision": micro, "recall": micro, "f1": micro}
    return result


def macro_f1(cm: np.ndarray) -> float:
    return averages(cm)["macro"]["f1"]


def true_class_ranks(y_true, scores) -> np.ndarray:
    """Per row, 0 if the true class scores highest, 1 if second, ...; ties go to the lower index (as argmax)."""
    y_true, scores = np.asarray(y_true, dtype=np.int64), np.asarray(scores)
    own = scores[np.arange(len(y_true)), y_true][:, None]
    lower = np.arange(scores.shape[1])[None, :] < y_true[:, None]
    return np.count_nonzero(scores > own, axis=1) + np.count_nonzero((scores == own) & lower, axis=1)


def top_k_accuracy(y_true, scores, k: int) -> float:
    """Share of rows whose true class is among the k highest scores."""
    return float(np.mean(true_class_ranks(y_true, scores) < k)) if len(y_true) else 0.0


def report(cm: np.ndarray, labels: list[str], top_k_hits: dict[int, int] | None = None) -> dict:
    """Every metric, JSON-ready, with notes on the zero divisions. `top_k_hits`: k -> images whose
    true class ranked below k."""
    stats = per_class(cm)
    n = int(cm.sum())
    predicted, support = cm.sum(axis=0), stats["support"]
    never_predicted = [labels[c] for c in range(len(labels)) if predicted[c] == 0 and support[c] > 0]
    no_images = [labels[c] for c in range(len(labels)) if support[c] == 0 and predicted[c] > 0]
    absent = [labels[c] for c in range(len(labels)) if support[c] == 0 and predicted[c] == 0]
    notes = []
    if never_predicted:
        notes.append(f"never predicted, precision set to 0: {', '.join(never_predicted)}")
    if no_images:
        notes.append(f"predicted but no images, recall set to 0: {', '.join(no_images)}")
    if absent:
        notes.append(f"no images and never predicted, left out of the averages: {_names(absent)}")
    return {
        "n": n,
        "labels": list(labels),
        "accuracy": accuracy(cm),
        "top_k_accuracy": {str(k): hits / n if n else 0.0 for k, hits in sorted((top_k_hits or {}).items())},
        "per_class": {
            label: {
                "precision": float(stats["precision"][c]),
                "recall": float(stats["recall"][c]),
                "f1": float(stats["f1"][c]),
                "support": int(support[c]),
            }
            for c, label in enumerate(labels)
        },
        **averages(cm),
        "confusion_matrix": cm.tolist(),
        "notes": notes,
    }


def _names(names: list[str], limit: int = 10) -> str:
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")
