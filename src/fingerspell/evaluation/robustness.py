"""Accuracy of a predictor under every corruption at every severity."""

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from fingerspell.evaluation.corruptions import CORRUPTIONS, SEVERITIES, corrupt

ProbaFn = Callable[[np.ndarray], np.ndarray]


def robustness_report(
    predict_proba: ProbaFn,
    images: np.ndarray,
    labels: np.ndarray,
    seed: int,
    corruptions: Sequence[str] = tuple(CORRUPTIONS),
) -> dict[str, Any]:
    """Clean accuracy, accuracy per corruption and severity (percent), and their mean.

    Returns:
        `{"clean/acc", "corrupted/mean_acc", "corruptions": {name: {"1": acc, "2": ..., "3": ...}},
        "seed", "samples"}` - flat keys where DVC shows them as metrics.
    """

    def accuracy(x: np.ndarray) -> float:
        return round(float(np.mean(predict_proba(x).argmax(axis=1) == labels) * 100), 4)

    table = {
        name: {str(sev): accuracy(corrupt(images, name, sev, seed)) for sev in SEVERITIES}
        for name in corruptions
    }
    every = [acc for row in table.values() for acc in row.values()]
    return {
        "clean/acc": accuracy(images.astype(np.float32)),
        "corrupted/mean_acc": round(float(np.mean(every)), 4) if every else None,
        "corruptions": table,
        "seed": seed,
        "samples": len(images),
    }
