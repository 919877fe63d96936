"""Batch augmentation in tensor ops: one random transform per sample, computed for the batch.

The data set fits in memory, so per-sample PIL transforms and worker processes only cost
time: here a whole batch is warped by one `affine_grid`/`grid_sample` call and its
photometric changes are broadcast arithmetic.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn


class BatchAugment(nn.Module):
    """Random affine (rotation, scale, shift), brightness and contrast, per sample.

    Input and output are float images in [0, 1], shape (N, C, H, W). Call it with a
    `torch.Generator` to make a run repeatable.

    Args:
        rotation: maximum rotation in degrees (uniform in [-rotation, rotation]).
        scale: (min, max) zoom factor.
        translate: maximum shift as a fraction of the image side.
        brightness: maximum additive change (uniform in [-b, b]).
        contrast: maximum relative contrast change (factor in [1 - c, 1 + c]).
        hflip: probability of a horizontal flip (0 for Sign-MNIST: one hand, one side).
        p: probability that a sample is augmented at all.
    """

    def __init__(
        self,
        rotation: float,
        scale: tuple[float, float],
        translate: float,
        brightness: float,
        contrast: float,
        hflip: float,
        p: float,
    ) -> None:
        super().__init__()
        lo, hi = float(scale[0]), float(scale[1])
        checks = {
            "rotation": 0 <= rotation <= 180,
            "scale": 0 < lo <= hi,
            "translate": 0 <= translate <= 1,
            "brightness": 0 <= brightness <= 1,
            "contrast": 0 <= contrast <= 1,
            "hflip": 0 <= hflip <= 1,
            "p": 0 <= p <= 1,
        }
        for key, ok in checks.items():
            if not ok:
                raise ValueError(f"augment.{key} is out of range: {locals()[key]!r}")
        self.rotation, self.scale, self.translate = rotation, (lo, hi), translate
        self.brightness, self.contrast, self.hflip, self.p = brightness, contrast, hflip, p

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Augment a batch (N, C, H, W) in [0, 1]; returns a new tensor of the same shape."""
        n = x.shape[0]
        if n == 0 or self.p == 0:
            return x

        def uniform(lo: float, hi: float) -> torch.Tensor:
            # drawn on the CPU so a CPU generator drives any device
            return torch.rand(n, generator=generator).to(x) * (hi - lo) + lo

        active = (uniform(0, 1) < self.p).to(x.dtype)  # (N,)
        angle = uniform(-self.rotation, self.rotation) * (math.pi / 180) * active
        zoom = 1 + (uniform(*self.scale) - 1) * active
        shift = torch.stack(
            [uniform(-self.translate, self.translate), uniform(-self.translate, self.translate)], 1
        )
        flip = torch.where((uniform(0, 1) < self.hflip) & (active > 0), -1.0, 1.0).to(x)
        # affine_grid maps output to input coordinates in [-1, 1]: invert the zoom, shift by 2t
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        theta = torch.stack(
            [
                torch.stack([cos * flip, -sin, shift[:, 0] * 2 * active], 1),
                torch.stack([sin * flip, cos, shift[:, 1] * 2 * active], 1),
            ],
            1,
        )  # (N, 2, 3)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        out = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
        gain = (1 + uniform(-self.contrast, self.contrast) * active).view(n, 1, 1, 1)
        offset = (uniform(-self.brightness, self.brightness) * active).view(n, 1, 1, 1)
        mean = out.mean(dim=(1, 2, 3), keepdim=True)
        return ((out - mean) * gain + mean + offset).clamp_(0, 1)

    def extra_repr(self) -> str:
        return (
            f"rotation={self.rotation}, scale={self.scale}, translate={self.translate}, "
            f"brightness={self.brightness}, contrast={self.contrast}, hflip={self.hflip}, p={self.p}"
        )
