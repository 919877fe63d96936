"""The graph that leaves PyTorch: raw grey 0-255 in, normalised inside, logits and probabilities out.

Putting normalisation in the graph is what lets every runtime (CLI, service, browser) feed
plain pixel values and read the model's own constants instead of repeating them.
"""

import torch
from torch import nn

INPUT_NAME = "image"
OUTPUT_NAMES = ("logits", "probabilities")


class OnnxWrapper(nn.Module):
    """`net` behind the export contract.

    Args:
        net: maps normalised images (N, 1, 28, 28) to logits (N, C).
        mean: training-set mean in [0, 1] units.
        std: training-set standard deviation in [0, 1] units.
    """

    def __init__(self, net: nn.Module, mean: float, std: float) -> None:
        super().__init__()
        if not std > 0:
            raise ValueError(f"normalisation std must be positive, got {std}")
        self.net = net
        self.scale: torch.Tensor
        self.shift: torch.Tensor
        # x_norm = (x / 255 - mean) / std = x * scale - shift: one Mul and one Sub in the graph
        self.register_buffer("scale", torch.tensor(1.0 / (255.0 * std), dtype=torch.float32))
        self.register_buffer("shift", torch.tensor(mean / std, dtype=torch.float32))

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw pixels (N, 1, 28, 28) float32 0-255 -> (logits (N, C), probabilities (N, C))."""
        logits = self.net(image * self.scale - self.shift)
        return logits, torch.softmax(logits, dim=1)
