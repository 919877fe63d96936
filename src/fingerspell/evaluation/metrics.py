"""Classification metrics from predicted and true class indices (numpy only, no framework)."""

from collections.abc import Sequence
from typing import Any

import numpy as np


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts (C, C): row = true class, column = predicted class."""
    flat = np.asarray(labels, np.int64) * num_classes + np.asarray(predicted, np.int64)
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def classification_metrics(
    labels: np.ndarray, predicted: np.ndarray, letters: Sequence[str]
) -> dict[str, Any]:
    """Accuracy, macro F1 and per-class accuracy (recall), in percent, keyed `test/...`.

    Macro F1 weighs every letter equally, so a letter the model never gets right is not
    hidden by the common ones.
    """
    if len(labels) == 0:
        raise ValueError("no samples to evaluate")
    cm = confusion_matrix(labels, predicted, len(letters)).astype(np.float64)
    tp = np.diag(cm)
    support, claimed = cm.sum(axis=1), cm.sum(axis=0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    precision = np.divide(tp, claimed, out=np.zeros_like(tp), where=claimed > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    present = support > 0
    return {
        "test/acc": round(float(tp.sum() / cm.sum() * 100), 4),
        "test/f1_macro": round(float(f1[present].mean() * 100), 4),
        "test/per_class_acc": {
            letter: round(float(r * 100), 4)
            for letter, r, ok in zip(letters, recall, present, strict=True)
            if ok
        },
        "test/samples": len(labels),
    }
