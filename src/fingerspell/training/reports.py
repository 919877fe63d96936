"""Test-split reports of a trained model: predictions, confusion matrix, per-class accuracy, plots.

Every file is written to a temp name beside its target and renamed, so a crash never leaves
half a report for DVC or MLflow to pick up.
"""

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: no display on CI or training machines
import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from fingerspell.atomic import atomic_write
from fingerspell.atomic import write_json as atomic_json


def write_text(path: Path, text: str) -> Path:
    """Write text atomically."""
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def write_json(path: Path, data: Any) -> Path:
    """Write sorted, indented, strict JSON atomically."""
    return atomic_json(path, data, sort_keys=True)


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> Path:
    """Write a CSV (header + rows, LF line ends) atomically."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return write_text(path, buffer.getvalue())


def save_figure(path: Path, fig: plt.Figure) -> Path:
    """Save a matplotlib figure as PNG atomically and close it."""
    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png"))
    finally:
        plt.close(fig)


@torch.no_grad()
def predict(model: nn.Module, images: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """Class probabilities (N, C) of uint8 images (N, 1, 28, 28); `model` maps [0, 1] floats to logits."""
    model.eval()
    chunks = []
    for start in range(0, len(images), batch_size):
        x = torch.from_numpy(images[start : start + batch_size]).float().div_(255)
        chunks.append(torch.softmax(model(x), dim=1).numpy())
    return np.concatenate(chunks)


def confusion(labels: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """(C, C) counts, rows = true class, columns = predicted class."""
    return np.bincount(labels * num_classes + predicted, minlength=num_classes**2).reshape(
        num_classes, num_classes
    )


def write_test_reports(
    probs: np.ndarray, images: np.ndarray, labels: np.ndarray, letters: Sequence[str], out_dir: Path
) -> dict[str, Path]:
    """Write the test-split reports into `out_dir`; return their paths by name.

    `test_predictions.csv` (actual, predicted letter per image) feeds DVC's `confusion` plot.
    """
    predicted = probs.argmax(1)
    cm = confusion(labels, predicted, len(letters))
    per_class = {letter: float(cm[i, i] / max(cm[i].sum(), 1)) for i, letter in enumerate(letters)}
    paths = {
        "predictions": write_csv(
            out_dir / "test_predictions.csv",
            ["actual", "predicted"],
            [(letters[a], letters[p]) for a, p in zip(labels, predicted, strict=True)],
        ),
        "confusion_csv": write_csv(
            out_dir / "confusion_matrix.csv",
            ["actual", *letters],
            [[letters[i], *row] for i, row in enumerate(cm)],
        ),
        "per_class": write_json(out_dir / "per_class_accuracy.json", per_class),
        "confusion_png": save_figure(out_dir / "confusion_matrix.png", confusion_figure(cm, letters)),
        "misclassified_png": save_figure(
            out_dir / "misclassified.png", misclassified_figure(images, labels, probs, letters)
        ),
    }
    return paths


def confusion_figure(cm: np.ndarray, letters: Sequence[str]) -> plt.Figure:
    """Row-normalised confusion matrix with the counts of the non-zero cells."""
    fig, ax = plt.subplots(figsize=(9, 8))
    rates = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    for i, j in zip(*np.nonzero(cm), strict=True):
        ax.text(
            j,
            i,
            str(cm[i, j]),
            ha="center",
            va="center",
            fontsize=6,
            color="white" if rates[i, j] > 0.5 else "k",
        )
    ax.set_xticks(range(len(letters)), letters)
    ax.set_yticks(range(len(letters)), letters)
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    accuracy = np.trace(cm) / max(cm.sum(), 1)
    ax.set_title(f"Test split: {cm.sum()} images, accuracy {accuracy:.4%}")
    return fig


def misclassified_figure(
    images: np.ndarray, labels: np.ndarray, probs: np.ndarray, letters: Sequence[str], limit: int = 48
) -> plt.Figure:
    """The most confident mistakes, each titled `true -> predicted (p)`."""
    predicted = probs.argmax(1)
    wrong = np.flatnonzero(predicted != labels)
    wrong = wrong[np.argsort(-probs[wrong, predicted[wrong]])][:limit]
    cols = 8
    rows = max(1, -(-len(wrong) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.3, rows * 1.5 + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, wrong, strict=False):
        ax.imshow(images[i, 0], cmap="gray", vmin=0, vmax=255)
        ax.set_title(f"{letters[labels[i]]}→{letters[predicted[i]]} {probs[i, predicted[i]]:.2f}", fontsize=7)
    fig.suptitle(
        f"{len(np.flatnonzero(predicted != labels))} misclassified test images (most confident first)"
    )
    return fig


def curves_figure(history: Sequence[dict[str, float]]) -> plt.Figure:
    """Loss and accuracy per epoch, train against validation."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    epochs = [row["epoch"] for row in history]
    for ax, name in ((left, "loss"), (right, "acc")):
        for stage in ("train", "val"):
            key = f"{stage}/{name}"
            ax.plot(epochs, [row.get(key, np.nan) for row in history], marker="o", label=key)
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend()
    left.set_yscale("log")
    return fig


def write_curves(history: Sequence[dict[str, float]], out_dir: Path) -> dict[str, Path]:
    """`train_curves.csv` (DVC plot) and `train_curves.png` from the per-epoch history."""
    keys = ["epoch", "train/loss", "train/acc", "val/loss", "val/acc", "val/f1", "lr"]
    rows = [[row.get(key, "") for key in keys] for row in history]
    return {
        "curves_csv": write_csv(out_dir / "train_curves.csv", keys, rows),
        "curves_png": save_figure(out_dir / "train_curves.png", curves_figure(history)),
    }
