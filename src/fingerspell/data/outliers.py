"""Hand-free images for outlier exposure: what the model should meet with "I don't know".

A Sign-MNIST model has never seen an image without a hand, so a cluttered photo or a blurry
crop falls onto a few default letters (H, P, Y) with high confidence. Outlier exposure
(Hendrycks et al. 2019) trains the model towards the uniform distribution on images that hold
no letter. Two kinds are made here, from the training batch itself, with no downloads:

- scenes: the procedural backgrounds of `augment=real` (gradients, textures, clutter) alone;
- shuffled hands: each image cut into a grid of tiles and the tiles permuted, which keeps the
  hand's grey levels and local texture but destroys its shape, so confidence that comes from
  texture alone is what gets penalised.
"""

import math

import torch
import torch.nn.functional as F

from fingerspell.data.augment_real import RealAugment


def shuffle_tiles(x: torch.Tensor, grid: int = 4, generator: torch.Generator | None = None) -> torch.Tensor:
    """Each image (N, C, H, W) cut into grid x grid tiles, permuted independently per sample."""
    n, c, h, w = x.shape
    if h % grid or w % grid:
        raise ValueError(f"a {h}x{w} image does not split into a {grid}x{grid} grid")
    th, tw = h // grid, w // grid
    tiles = x.reshape(n, c, grid, th, grid, tw).permute(0, 2, 4, 1, 3, 5).reshape(n, grid * grid, c, th, tw)
    order = torch.argsort(torch.rand(n, grid * grid, generator=generator), dim=1).to(x.device)
    tiles = tiles[torch.arange(n, device=x.device).unsqueeze(1), order]
    return tiles.reshape(n, grid, grid, c, th, tw).permute(0, 3, 1, 4, 2, 5).reshape(n, c, h, w)


def scenes(template: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One procedural scene per image of `template` (same shape, dtype, device), no hand in any."""
    n = template.shape[0]

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator).to(template)

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return rand(n) * (hi - lo) + lo

    return RealAugment._backgrounds(template, rand, uniform)


def hand_free(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """As many hand-free images as `x` holds: the first half scenes, the rest shuffled hands."""
    half = x.shape[0] // 2
    return torch.cat([scenes(x[:half], generator), shuffle_tiles(x[half:], generator=generator)])


def uniform_loss(logits: torch.Tensor) -> torch.Tensor:
    """KL divergence from the uniform distribution over classes: 0 only for uniform predictions."""
    return -F.log_softmax(logits, dim=1).mean(dim=1).mean() - math.log(logits.shape[1])
