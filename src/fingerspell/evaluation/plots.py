"""Figures and plot data for `dvc plots` and the README."""

import csv
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fingerspell.atomic import atomic_write


def write_predictions_csv(
    path: Path, labels: np.ndarray, predicted: np.ndarray, letters: Sequence[str]
) -> None:
    """`actual,predicted` letter per test image: what DVC's `confusion` template draws."""

    def write(tmp: Path) -> None:
        with tmp.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["actual", "predicted"])
            writer.writerows((letters[a], letters[p]) for a, p in zip(labels, predicted, strict=True))

    atomic_write(path, write)


def plot_robustness(path: Path, report: dict[str, Any]) -> None:
    """Accuracy against severity (0 = clean), one line per corruption, as a PNG."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    clean = report["clean/acc"]
    for name, row in report["corruptions"].items():
        severities = [0, *(int(s) for s in row)]
        ax.plot(severities, [clean, *row.values()], marker="o", label=name.replace("_", " "))
    ax.set(xlabel="severity (0 = clean test split)", ylabel="accuracy (%)", xticks=[0, 1, 2, 3])
    ax.set_title(f"Robustness on corrupted copies of the test split (seed {report['seed']})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
    finally:
        plt.close(fig)
