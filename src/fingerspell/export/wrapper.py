"""The graph that leaves PyTorch: raw grey 0-255 in, normalised inside, logits and probabilities out.

Putting normalisation in the graph is what lets every runtime (CLI, service, browser) feed
plain pixel values and read the model's own constants instead of repeating them. The same goes
for the optional per-image standardisation (`fingerspell-export standardise_input=true`).
"""

import numpy as np
import torch
from torch import nn

INPUT_NAME = "image"
OUTPUT_NAMES = ("logits", "probabilities")
# grey levels: a flatter image is scaled as if it had this spread, so a nearly blank frame's
# noise is not blown up to full contrast (every train image spreads >= 18.6, every dev photo >= 9.7)
MIN_SPREAD = 8.0


def standardise(image: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Shift and scale each image so its grey mean and spread are `mean` and `std`."""
    own_mean = image.mean(dim=(1, 2, 3), keepdim=True)
    own_std = image.std(dim=(1, 2, 3), keepdim=True, unbiased=False)
    return (image - own_mean) / own_std.clamp(min=MIN_SPREAD) * std + mean


def image_statistics(images: np.ndarray) -> tuple[float, float]:
    """The mean over images of each image's own grey mean and spread (0-255), for `standardise`."""
    flat = images.reshape(len(images), -1).astype(np.float64)
    return float(flat.mean(axis=1).mean()), float(flat.std(axis=1).mean())


class OnnxWrapper(nn.Module):
    """`net` behind the export contract.

    Args:
        net: maps normalised images (N, 1, 28, 28) to logits (N, C).
        mean: training-set mean in [0, 1] units.
        std: training-set standard deviation in [0, 1] units.
        standardise: (mean, spread) in grey levels that each input image is shifted and scaled
            to before anything else, or None. Phone photos are darker than Sign-MNIST crops
            (mean grey 121 vs 159); giving every image the training images' typical mean and
            spread takes exposure out of what the net has to cope with.
    """

    def __init__(
        self, net: nn.Module, mean: float, std: float, standardise: tuple[float, float] | None = None
    ) -> None:
        super().__init__()
        if not std > 0:
            raise ValueError(f"normalisation std must be positive, got {std}")
        if standardise is not None and not standardise[1] > 0:
            raise ValueError(f"the standardised spread must be positive, got {standardise[1]}")
        self.net = net
        self.standardise = standardise
        target = standardise or (0.0, 1.0)
        self.target_mean: torch.Tensor
        self.target_std: torch.Tensor
        self.register_buffer("target_mean", torch.tensor(target[0], dtype=torch.float32))
        self.register_buffer("target_std", torch.tensor(target[1], dtype=torch.float32))
        self.scale: torch.Tensor
        self.shift: torch.Tensor
        # x_norm = (x / 255 - mean) / std = x * scale - shift: one Mul and one Sub in the graph
        self.register_buffer("scale", torch.tensor(1.0 / (255.0 * std), dtype=torch.float32))
        self.register_buffer("shift", torch.tensor(mean / std, dtype=torch.float32))

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw pixels (N, 1, 28, 28) float32 0-255 -> (logits (N, C), probabilities (N, C))."""
        if self.standardise is not None:
            image = standardise(image, self.target_mean, self.target_std)
        logits = self.net(image * self.scale - self.shift)
        return logits, torch.softmax(logits, dim=1)
