"""Temperature scaling and the `unsure` threshold, fitted on held-out train data.

A softmax trained with cross-entropy is over-confident off its own distribution: on a real photo
the classic CNN says 99% and is wrong. One scalar T (probabilities = softmax(logits / T)) fixes
most of that without changing any prediction. Where T is fitted decides what it learns: the plain
validation split is ~100% accurate, so fitting there only sharpens the model. Instead the
validation split (held out from the train CSV; never the test split, never the real-photo dev set)
is shown under the real-photo augmentation, where the model makes the kind of mistakes it will
make on photos, and T minimises the negative log-likelihood there.

Off its own distribution the model also leans towards a few letters (on real photos the
`real_hands` model says H, L, Y or P for half of them). An optional per-class bias, fitted on
the same held-out images (plain and augmented together) after T, moves the logits so that the
mean predicted distribution there matches the letters' frequencies: the NLL optimum in b. It is
the bias half of Guo et al.'s vector scaling, and like T it is carried by the model's metadata.

The threshold follows from held-out data by a stated rule: the lowest confidence at which the
answered held-out images (plain and augmented together) are at least `target_accuracy` correct.
"""

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from fingerspell.photos.metrics import expected_calibration_error


@dataclass(frozen=True)
class CalibrationSettings:
    """What to fit on and how: repeats of the augmented validation split, the threshold rule."""

    enabled: bool = True  # the `unsure` threshold (and the report)
    temperature: bool = False  # also fit T; off, probabilities stay the plain softmax (T = 1)
    class_bias: bool = False  # also fit a per-class bias b: probabilities = softmax(logits / T + b)
    repeats: int = 2  # passes of the validation split, each under fresh augmentation
    seed: int = 0
    target_accuracy: float = 0.9  # answered held-out images must be at least this accurate
    threshold: float | None = None  # a fixed threshold instead of the rule
    batch_size: int = 512
    max_accuracy_drop: float = 1.0  # test-split points the class bias may cost before the export fails

    def __post_init__(self) -> None:
        """Refuse values that would fit on nothing or write a meaningless threshold."""
        if self.repeats < 1:
            raise ValueError(
                f"calibration.repeats={self.repeats} must be >= 1 (passes of the validation split)"
            )
        if self.batch_size < 1:
            raise ValueError(f"calibration.batch_size={self.batch_size} must be >= 1")
        if not 0 < self.target_accuracy <= 1:
            raise ValueError(f"calibration.target_accuracy={self.target_accuracy:g} must be in (0, 1]")
        if not self.max_accuracy_drop >= 0:  # NaN too: it would switch the check off
            raise ValueError(
                f"calibration.max_accuracy_drop={self.max_accuracy_drop:g} must be >= 0 (points)"
            )
        if self.threshold is not None and not 0 <= self.threshold <= 1:
            raise ValueError(
                f"calibration.threshold={self.threshold:g} must be in [0, 1] (or null for the rule)"
            )


def softmax(logits: np.ndarray, temperature: float = 1.0, bias: np.ndarray | None = None) -> np.ndarray:
    """Row softmax of `logits / temperature + bias`, computed stably."""
    z = logits / temperature + (0.0 if bias is None else bias)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def nll(
    logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0, bias: np.ndarray | None = None
) -> float:
    """Mean negative log-likelihood of the true class under `softmax(logits / T + bias)`."""
    z = logits / temperature + (0.0 if bias is None else bias)
    z = z - z.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-log_p[np.arange(len(labels)), labels].mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray, lo: float = 0.05, hi: float = 50.0) -> float:
    """T > 0 minimising NLL: a grid over log T, then a golden-section refinement around the best point.

    NLL is smooth and unimodal in log T, so a 1-D search is exact enough and has no learning rate
    to tune (LBFGS on one scalar buys nothing here).
    """
    if len(labels) == 0:
        raise ValueError("no calibration data: the validation split is empty")
    grid = np.linspace(np.log(lo), np.log(hi), 61)
    losses = [nll(logits, labels, float(np.exp(g))) for g in grid]
    i = int(np.argmin(losses))
    a, b = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    ratio = (np.sqrt(5) - 1) / 2
    for _ in range(40):
        c, d = b - ratio * (b - a), a + ratio * (b - a)
        if nll(logits, labels, float(np.exp(c))) < nll(logits, labels, float(np.exp(d))):
            b = d
        else:
            a = c
    return float(np.exp((a + b) / 2))


def fit_class_bias(
    logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0, steps: int = 500, tol: float = 1e-6
) -> np.ndarray:
    """Per-class bias b (mean 0) minimising NLL of softmax(logits / T + b).

    NLL is convex in b and its gradient is (mean predicted distribution - label frequencies), so
    the optimum is the b under which the two match. The update b += log(freq) - log(mean p) is the
    classic prior-matching fixed point (Saerens et al. 2002) for that condition; it needs no
    learning rate and stops when the largest gap is under `tol`.
    """
    if len(labels) == 0:
        raise ValueError("no calibration data: the validation split is empty")
    classes = logits.shape[1]
    freq = np.bincount(labels, minlength=classes) / len(labels)
    if (freq == 0).any():
        missing = np.flatnonzero(freq == 0).tolist()
        raise ValueError(f"cannot fit a class bias: class(es) {missing} missing from the held-out data")
    bias = np.zeros(classes)
    for _ in range(steps):
        mean_p = softmax(logits, temperature, bias).mean(axis=0)
        if np.abs(mean_p - freq).max() < tol:
            break
        bias += np.log(freq) - np.log(mean_p)
        bias -= bias.mean()
    return bias


def choose_threshold(confidence: np.ndarray, correct: np.ndarray, target_accuracy: float) -> float:
    """Lowest threshold (in steps of 0.01) whose answered images are >= `target_accuracy` correct."""
    for t in np.round(np.arange(0.0, 1.0, 0.01), 2):
        answered = confidence >= t
        if answered.any() and correct[answered].mean() >= target_accuracy:
            return float(t)
    return 0.99


def summarise(
    logits: np.ndarray,
    labels: np.ndarray,
    temperature: float,
    threshold: float,
    bias: np.ndarray | None = None,
) -> dict:
    """NLL and ECE before/after, and accuracy and coverage at the threshold, on one data set.

    "after" is the calibrated model (T and, when fitted, the class bias); `accuracy` is after too,
    since a bias can move the argmax.
    """
    before, after = softmax(logits), softmax(logits, temperature, bias)
    confidence = after.max(axis=1)
    correct = after.argmax(axis=1) == labels
    answered = confidence >= threshold
    return {
        "images": len(labels),
        "accuracy": round(float(correct.mean()), 4),
        "nll_before": round(nll(logits, labels), 4),
        "accuracy_before": round(float((before.argmax(axis=1) == labels).mean()), 4),
        "nll_after": round(nll(logits, labels, temperature, bias), 4),
        "ece_before": round(expected_calibration_error(before, labels), 4),
        "ece_after": round(expected_calibration_error(after, labels), 4),
        "coverage_at_threshold": round(float(answered.mean()), 4),
        "accuracy_at_threshold": round(float(correct[answered].mean()), 4) if answered.any() else None,
    }


@torch.no_grad()
def model_logits(
    wrapper: nn.Module,
    images: np.ndarray,
    augment: nn.Module | None = None,
    generator: torch.Generator | None = None,
    batch_size: int = 512,
) -> np.ndarray:
    """Logits of the export wrapper (raw 0-255 in) for uint8 images, optionally augmented first."""
    out = []
    for start in range(0, len(images), batch_size):
        x = torch.from_numpy(np.asarray(images[start : start + batch_size])).float() / 255.0
        if augment is not None:
            x = augment(x, generator=generator)
        logits, _ = wrapper(x * 255.0)
        out.append(logits.numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def calibrate(
    wrapper: nn.Module,
    held_out: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    augment: nn.Module | None,
    settings: CalibrationSettings,
) -> dict[str, Any]:
    """Fit T (if asked) on augmented held-out images, choose the threshold, and report both data sets."""
    wrapper = wrapper.eval()
    generator = torch.Generator().manual_seed(settings.seed)
    images, labels = held_out
    logits = np.concatenate(
        [
            model_logits(wrapper, images, augment, generator, settings.batch_size)
            for _ in range(max(settings.repeats, 1))
        ]
    )
    labels = np.tile(labels, max(settings.repeats, 1))
    temperature = fit_temperature(logits, labels) if settings.temperature else 1.0
    # the threshold sees clean and shifted held-out images together: answer what looks like a
    # sign the model knows, refuse what looks like the hard shifted cases
    plain_logits = model_logits(wrapper, images, batch_size=settings.batch_size)
    both_logits = np.concatenate([plain_logits, logits])
    both_labels = np.concatenate([held_out[1], labels])
    # the bias is fitted on both too: on the shifted images alone it costs the clean test split
    # ~0.1 point; with the plain ones in, the test split keeps its accuracy (README)
    bias = fit_class_bias(both_logits, both_labels, temperature) if settings.class_bias else None
    both = softmax(both_logits, temperature, bias)
    rule = settings.threshold is None
    threshold = (
        choose_threshold(both.max(axis=1), both.argmax(axis=1) == both_labels, settings.target_accuracy)
        if rule
        else float(settings.threshold)  # type: ignore[arg-type]
    )
    test_logits = model_logits(wrapper, test[0], batch_size=settings.batch_size)
    return {
        "temperature": round(temperature, 4) if settings.temperature else None,
        "class_bias": None if bias is None else [round(float(b), 4) for b in bias],
        "unsure_threshold": threshold,
        "threshold_rule": (
            f"lowest confidence where held-out accuracy (plain + augmented) >= {settings.target_accuracy}"
            if rule
            else "fixed (calibration.threshold)"
        ),
        "fitted_on": f"validation split x{max(settings.repeats, 1)} under the real-photo augmentation"
        if augment is not None
        else "validation split, not augmented",
        "held_out": summarise(logits, labels, temperature, threshold, bias),
        "held_out_plain": summarise(plain_logits, held_out[1], temperature, threshold, bias),
        "test": summarise(test_logits, test[1], temperature, threshold, bias),
    }
