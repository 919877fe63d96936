"""MixStyle (Zhou et al., "Domain Generalization with MixStyle", ICLR 2021).

A phone photo differs from a Sign-MNIST crop mostly in texture and light, which early conv
layers carry as the per-channel mean and spread of their feature maps. Mixing those statistics
between images of a batch during training shows the later layers the same hand under new
"styles", so they learn to read the shape rather than the style. No parameters; identity at
inference, so exported graphs do not change.
"""

import torch
from torch import Tensor, nn


class MixStyle(nn.Module):
    """Mix each image's feature statistics with those of another image in the batch.

    Args:
        p: probability that a training batch is mixed at all.
        alpha: Beta(alpha, alpha) draws the mixing weight; small values keep most mixes near
            one of the two images, as in the paper (0.1).
        eps: added to the variance before the square root.
    """

    def __init__(self, p: float = 0.5, alpha: float = 0.1, eps: float = 1e-6) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"MixStyle p must be in [0, 1], got {p}")
        if alpha <= 0:
            raise ValueError(f"MixStyle alpha must be > 0, got {alpha}")
        self.p = p
        self.alpha = alpha
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        """(N, C, H, W) features -> the same shape, restyled in training with probability p."""
        if not self.training or x.size(0) < 2 or torch.rand(()).item() >= self.p:
            return x
        mu = x.mean(dim=(2, 3), keepdim=True).detach()
        sigma = (x.var(dim=(2, 3), keepdim=True) + self.eps).sqrt().detach()
        normed = (x - mu) / sigma
        beta = torch.distributions.Beta(self.alpha, self.alpha)
        lam = beta.sample((x.size(0), 1, 1, 1)).to(x.device, x.dtype)
        perm = torch.randperm(x.size(0), device=x.device)
        mu_mix = lam * mu + (1 - lam) * mu[perm]
        sigma_mix = lam * sigma + (1 - lam) * sigma[perm]
        return normed * sigma_mix + mu_mix

    def extra_repr(self) -> str:
        return f"p={self.p}, alpha={self.alpha}"
