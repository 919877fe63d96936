"""Accuracy with honest intervals, calibration and coverage for a labelled photo set.

Photos come in groups (several versions of one source photo), so intervals bootstrap over
groups, not images: resampling images would pretend the versions are independent.
"""

from typing import Any

import numpy as np


def topk_hits(probs: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
    """Per-image 1/0: is the true class among the k most probable."""
    top = np.argsort(-probs, axis=1)[:, :k]
    return (top == y[:, None]).any(axis=1).astype(np.float64)


def grouped_bootstrap(
    values: np.ndarray, groups: np.ndarray, n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile interval of the mean of `values`, resampling whole groups with replacement."""
    _, inverse = np.unique(groups, return_inverse=True)
    sums = np.bincount(inverse, weights=values)
    counts = np.bincount(inverse).astype(np.float64)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(sums), size=(n_boot, len(sums)))
    means = sums[picks].sum(axis=1) / counts[picks].sum(axis=1)
    alpha = (1 - level) / 2
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))


def expected_calibration_error(probs: np.ndarray, y: np.ndarray, n_bins: int = 15) -> float:
    """ECE: confidence vs accuracy gap, weighted over equal-width confidence bins."""
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == y).astype(np.float64)
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        mask = bins == b
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(ece)


def coverage_curve(probs: np.ndarray, y: np.ndarray, points: int = 21) -> list[dict[str, float]]:
    """Accuracy of the answered images as the confidence threshold rises (coverage falls)."""
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y
    curve = []
    for threshold in np.linspace(0.0, 1.0, points):
        answered = confidence >= threshold
        n = int(answered.sum())
        curve.append(
            {
                "threshold": float(threshold),
                "coverage": n / len(y) if len(y) else 0.0,
                "accuracy": float(correct[answered].mean()) if n else float("nan"),
            }
        )
    return curve


def summarise(
    probs: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    letters: tuple[str, ...],
    threshold: float | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Everything the report shows, JSON-ready."""
    top1, top3 = topk_hits(probs, y, 1), topk_hits(probs, y, 3)
    pred = probs.argmax(axis=1)
    n_cls = len(letters)
    confusion = np.zeros((n_cls, n_cls), dtype=np.int64)
    np.add.at(confusion, (y, pred), 1)
    per_letter = {
        letters[c]: {"n": int((y == c).sum()), "acc": float(top1[y == c].mean()) if (y == c).any() else None}
        for c in range(n_cls)
    }
    eps = 1e-12
    result: dict[str, Any] = {
        "n_images": len(y),
        "n_groups": len(np.unique(groups)),
        "top1": float(top1.mean()),
        "top1_ci95": grouped_bootstrap(top1, groups, n_boot, seed),
        "top3": float(top3.mean()),
        "top3_ci95": grouped_bootstrap(top3, groups, n_boot, seed),
        "nll": float(-np.log(probs[np.arange(len(y)), y] + eps).mean()),
        "ece": expected_calibration_error(probs, y),
        "mean_confidence": float(probs.max(axis=1).mean()),
        "chance": 1 / n_cls,
        "per_letter": per_letter,
        "confusion": confusion.tolist(),
        "coverage_curve": coverage_curve(probs, y),
    }
    if threshold is not None:
        answered = probs.max(axis=1) >= threshold
        result["at_threshold"] = {
            "threshold": threshold,
            "coverage": float(answered.mean()),
            "accuracy_answered": float(top1[answered].mean()) if answered.any() else None,
        }
    return result
