"""Metrics from predictions and timings, in numpy alone: shared by host and device."""
from eval.metrics import accuracy, confusion_matrix, macro_f1, precision_recall_f1

__all__ = ["accuracy", "confusion_matrix", "macro_f1", "precision_recall_f1"]
