"""Corrupted copies of a split, for a robustness report: each corruption at three severities.

Real photos differ from Sign-MNIST by exactly these: framing (rotation, shift, scale), focus
(blur), sensor noise, exposure (brightness/contrast) and things in front of the hand
(occlusion). Everything is seeded, so the report is repeatable.
"""

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

Corruption = Callable[[torch.Tensor, int, torch.Generator], torch.Tensor]
SEVERITIES = (1, 2, 3)


def _sign(n: int, gen: torch.Generator) -> torch.Tensor:
    return torch.randint(0, 2, (n,), generator=gen).float() * 2 - 1


def _affine(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Warp (N, 1, H, W) by per-image 2x3 matrices; edges are extended, as a wider photo would be."""
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _rotation(x: torch.Tensor, severity: int, gen: torch.Generator) -> torch.Tensor:
    angle = math.radians((10.0, 20.0, 30.0)[severity - 1]) * _sign(len(x), gen)
    cos, sin, zero = angle.cos(), angle.sin(), torch.zeros(len(x))
    return _affine(x, torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1))


def _shift(x: torch.Tensor, severity: int, gen: torch.Generator) -> torch.Tensor:
    pixels = (2.0, 4.0, 6.0)[severity - 1]
    direction = torch.rand(len(x), generator=gen) * 2 * math.pi
    tx, ty = direction.cos() * pixels * 2 / x.shape[-1], direction.sin() * pixels * 2 / x.shape[-2]
    one, zero = torch.ones(len(x)), torch.zeros(len(x))
    return _affine(x, torch.stack([torch.stack([one, zero, tx], 1), torch.stack([zero, one, ty], 1)], 1))


def _scale(x: torch.Tensor, severity: int, gen: torch.Generator) -> torch.Tensor:
    factor = (1.15, 1.3, 1.5)[severity - 1] ** _sign(len(x), gen)  # zoom in or out
    inv, zero = 1.0 / factor, torch.zeros(len(x))
    return _affine(x, torch.stack([torch.stack([inv, zero, zero], 1), torch.stack([zero, inv, zero], 1)], 1))


def _blur(x: torch.Tensor, severity: int, gen: torch.Generator) -> torch.Tensor:
    sigma = (0.6, 1.0, 1.5)[severity - 1]
    radius = math.ceil(3 * sigma)
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / k.sum()
    padded = F.pad(x, (radius, radius, radius, radius), mode="replicate")
    out = F.conv2d(padded, k.view(1, 1, 1, -1))
    return F.conv2d(out, k.view(1, 1, -1, 1))


def _gaussian_noise(x: torch.Tensor, severity: int, gen: torch.Generator) -> torch.Tensor:
    sigma = (8.0, 16.0, 32.0)[severity - 1]  # grey levels
    return x + torch.randn(x.shape, generator=gen) * sigma


def _brightness_contrast(x: torch.Tensor, severity: int, gen: torch.Generator) -> torch.Tensor:
    contrast = (0.8, 0.6, 0.4)[severity - 1]
    offset = (20.0, 40.0, 60.0)[severity - 1] * _sign(len(x), gen).view(-1, 1, 1, 1)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * contrast + mean + offset


def _occlusion(x: torch.Tensor, severity: int, gen: torch.Generator) -> torch.Tensor:
    side = (6, 9, 12)[severity - 1]
    n, _, h, w = x.shape
    top = torch.randint(0, h - side + 1, (n,), generator=gen)
    left = torch.randint(0, w - side + 1, (n,), generator=gen)
    fill = torch.rand(n, generator=gen) * 255
    rows, cols = torch.arange(h).view(1, h, 1), torch.arange(w).view(1, 1, w)
    mask = (rows >= top.view(n, 1, 1)) & (rows < (top + side).view(n, 1, 1))
    mask = mask & (cols >= left.view(n, 1, 1)) & (cols < (left + side).view(n, 1, 1))
    return torch.where(mask[:, None], fill.view(n, 1, 1, 1), x)


CORRUPTIONS: dict[str, Corruption] = {
    "rotation": _rotation,
    "shift": _shift,
    "scale": _scale,
    "blur": _blur,
    "gaussian_noise": _gaussian_noise,
    "brightness_contrast": _brightness_contrast,
    "occlusion": _occlusion,
}


def corrupt(images: np.ndarray, name: str, severity: int, seed: int) -> np.ndarray:
    """A corrupted copy of raw images (N, 1, 28, 28) 0-255 as float32 0-255 (rounded, clipped)."""
    if name not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {name!r}; choose from {', '.join(CORRUPTIONS)}")
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES}, got {severity}")
    # One stream per (corruption, severity): adding a corruption does not change the others.
    gen = torch.Generator().manual_seed(seed * 1000 + list(CORRUPTIONS).index(name) * 10 + severity)
    x = torch.from_numpy(np.asarray(images, dtype=np.float32))
    with torch.no_grad():
        out = CORRUPTIONS[name](x, severity, gen)
    return out.round().clamp(0, 255).numpy()
