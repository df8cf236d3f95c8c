"""Classification metrics from integer labels and predictions (numpy only; runs on the device too).

A class with no predictions has precision 0 and a class with no samples has recall 0, never NaN.
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


def _safe_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.zeros(num.shape, dtype=np.float64), where=den > 0)


def precision_recall_f1(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class precision, recall and F1."""
    tp = np.diag(cm).astype(np.float64)
    precision = _safe_divide(tp, cm.sum(axis=0).astype(np.float64))
    recall = _safe_divide(tp, cm.sum(axis=1).astype(np.float64))
    f1 = _safe_divide(2 * precision * recall, precision + recall)
    return precision, recall, f1


def macro_f1(cm: np.ndarray) -> float:
    return float(precision_recall_f1(cm)[2].mean())
