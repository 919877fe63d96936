"""Does the ONNX file compute what PyTorch computes? Checked over a whole split, not a few samples."""

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from fingerspell.export.wrapper import OnnxWrapper
from fingerspell.inference.predictor import OnnxPredictor


@dataclass(frozen=True)
class Parity:
    """Agreement between the torch wrapper and onnxruntime on the same images."""

    samples: int
    argmax_agreement: float  # fraction in [0, 1]
    max_abs_prob_diff: float
    atol: float

    @property
    def passed(self) -> bool:
        return self.argmax_agreement == 1.0 and self.max_abs_prob_diff <= self.atol

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


def torch_probabilities(
    wrapper: OnnxWrapper,
    images: np.ndarray,
    batch_size: int = 512,
    temperature: float | None = None,
    class_bias: Sequence[float] | None = None,
) -> np.ndarray:
    """Probabilities (N, C) from the eval-mode torch wrapper on raw uint8/float images (N, 1, 28, 28).

    With a `temperature` and/or `class_bias` they are softmax(logits / T + b), as the predictor
    computes for a calibrated model.
    """
    calibrated = bool(temperature) or class_bias is not None
    bias = torch.tensor(class_bias if class_bias is not None else 0.0, dtype=torch.float32)
    wrapper = wrapper.eval()
    parts = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            x = torch.from_numpy(np.asarray(images[start : start + batch_size], dtype=np.float32))
            logits, probs = wrapper(x)
            scaled = logits / (temperature or 1.0) + bias
            parts.append((torch.softmax(scaled, dim=1) if calibrated else probs).numpy())
    return np.concatenate(parts)


def check_parity(
    wrapper: OnnxWrapper, predictor: OnnxPredictor, images: np.ndarray, atol: float, batch_size: int = 512
) -> Parity:
    """Compare probabilities of `wrapper` and `predictor` (with its calibration) over all `images`."""
    meta = predictor.metadata
    expected = torch_probabilities(wrapper, images, batch_size, meta.temperature, meta.class_bias)
    got = predictor.predict_proba(images, batch_size=batch_size)
    agree = float(np.mean(expected.argmax(axis=1) == got.argmax(axis=1)))
    return Parity(
        samples=len(images),
        argmax_agreement=agree,
        max_abs_prob_diff=float(np.abs(expected - got).max()),
        atol=atol,
    )
