"""Pictures of a photo-set report: confusion matrix and accuracy-vs-coverage."""

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from fingerspell.atomic import atomic_write


def save_atomic(fig: Figure, path: Path) -> None:
    """Save as PNG to a temp file beside `path`, then rename: never a half-written plot; closes `fig`."""
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    finally:
        plt.close(fig)


def plot_confusion(confusion: list[list[int]], letters: tuple[str, ...], title: str, path: Path) -> None:
    """Row-normalised confusion matrix (true letter rows, predicted columns)."""
    cm = np.asarray(confusion, dtype=np.float64)
    rates = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(7, 6))
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(letters)), letters)
    ax.set_yticks(range(len(letters)), letters)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.046, label="share of the true letter")
    fig.tight_layout()
    save_atomic(fig, path)


def plot_coverage(curves: dict[str, list[dict[str, Any]]], title: str, path: Path) -> None:
    """Accuracy of answered images against the share answered, one line per reading."""
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for label, curve in curves.items():
        pts = [(c["coverage"], c["accuracy"]) for c in curve if c["coverage"] > 0]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", markersize=3, label=label)
    ax.set_xlabel("coverage (share of images answered)")
    ax.set_ylabel("accuracy of answered images")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(title)
    fig.tight_layout()
    save_atomic(fig, path)
