"""The `augment=real` recipe: vary what Sign-MNIST never varies, so real photos look familiar.

Sign-MNIST crops are tight, evenly lit, plain-backgrounded and clean. A phone photo is none of
those: the hand fills part of the frame over clutter, the light is harsh or dim, the image is
blurred, noisy and JPEG-compressed, sometimes mirrored. Each ingredient below is one of those
differences, drawn per sample and computed for the whole batch in tensor ops (no PIL, no
workers), driven by one `torch.Generator` so a run is repeatable.

Colour-to-grey weights cannot be varied here: Sign-MNIST is grey already, so there is no
colour left to weigh.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn


def _grid(h: int, w: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel-centre coordinates from -1 to 1: ys (1, h, 1) and xs (1, 1, w), to broadcast over a batch."""
    ys = torch.linspace(-1, 1, h, dtype=like.dtype, device=like.device).view(1, h, 1)
    xs = torch.linspace(-1, 1, w, dtype=like.dtype, device=like.device).view(1, 1, w)
    return ys, xs


def _blur3(x: torch.Tensor) -> torch.Tensor:
    """A 3x3 binomial blur with replicate padding (one depthwise conv for the batch)."""
    k = torch.tensor([1.0, 2.0, 1.0], dtype=x.dtype, device=x.device)
    kernel = (k[:, None] * k[None, :] / 16).view(1, 1, 3, 3).repeat(x.shape[1], 1, 1, 1)
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel, groups=x.shape[1])


def _warp(
    x: torch.Tensor, theta: torch.Tensor, offset: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Warp a batch by `theta` and an optional per-pixel grid `offset` (N, H, W, 2).

    Returns the warped batch and a soft in-frame mask (0 where the frame is empty).
    """
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    if offset is not None:
        grid = grid + offset
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    ones = torch.ones(x.shape[0], 1, *x.shape[2:], dtype=x.dtype, device=x.device)
    inside = F.grid_sample(ones, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out, _blur3(inside)  # a soft edge, so the paste leaves no hard frame


class RealAugment(nn.Module):
    """Geometry, backgrounds, light, blur, noise, compression and occlusion for real-photo transfer.

    Input and output are float images in [0, 1], shape (N, C, H, W). Every ingredient has its own
    probability (0 turns it off), so the YAML can switch each one for an ablation.

    Args:
        rotation: maximum rotation in degrees.
        scale: (min, max) size of the hand relative to the frame; below 1 the hand fills only part
            of the frame and the margin shows the background.
        translate: maximum shift as a fraction of the image side.
        hflip: probability of a horizontal flip (left-handed signers, mirrored webcams).
        background: probability of compositing over a procedural background (gradient, texture,
            clutter rectangles); without it the zoomed-out margin repeats the border pixels.
        background_blend: maximum weight of the background blended over the hand itself, where
            the crop is smooth (a soft foreground mask from local gradients).
        gamma: maximum |log gamma| (gamma in [exp(-g), exp(g)]).
        brightness: maximum additive change.
        contrast: maximum relative contrast change.
        blur: probability of a blur, of random strength (1-2 passes of a 3x3 binomial filter).
        noise: maximum standard deviation of Gaussian pixel noise (uniform per sample).
        compress: probability of a compression-like degradation (down-up sampling and grey-level
            quantisation).
        erase: probability of erasing one random rectangle (up to `erase_area` of the image).
        erase_area: maximum erased fraction of the image.
        randconv: probability of a random convolution (Xu et al. 2021, "Random Convolutions"):
            a random 1x1 to 7x7 filter per sample, rescaled to the sample's mean and spread and
            mixed with it at a random weight. It keeps shapes and scrambles local texture and
            grey levels (edges, inversions, blurs), which no photometric range covers.
        randconv_layers: 1 for the single random filter above; more for the progressive variant
            (Choi et al. 2023, "Pro-RandConv"): one random 3x3 filter around the identity per sample,
            applied 1 to `randconv_layers` times, each pass standardised and squashed by a random tanh, so the
            texture changes grow with depth while the shape stays put.
        shear: maximum shear angle in degrees (0 = off), with `aspect` a change of viewpoint.
        aspect: maximum |log aspect ratio| of a stretch along the image axes (0 = off).
        shading: maximum log-gain of uneven light: a smooth random field (a ramp and soft blobs) that
            brightens one part of the frame and darkens another (0 = off).
        hflip_all: flip with probability `hflip` also the samples that `p` leaves untouched, so
            the model sees left and right hands equally often (otherwise only augmented ones flip).
        elastic: maximum displacement of a smooth random warp, as a fraction of the side (0 = off).
        ampmix: probability of Fourier amplitude mixing (Xu et al. 2021, "FACT"): the sample takes a
            random share of another sample's amplitude spectrum and keeps its own phase, then its own
            mean and spread. Phase carries where the edges are (the hand's shape); amplitude carries
            how strong each frequency is (texture, sharpness, grain), which is what photos change.
        p: probability that a sample is augmented at all.
    """

    def __init__(
        self,
        rotation: float,
        scale: tuple[float, float],
        translate: float,
        hflip: float,
        background: float,
        background_blend: float,
        gamma: float,
        brightness: float,
        contrast: float,
        blur: float,
        noise: float,
        compress: float,
        erase: float,
        erase_area: float,
        p: float,
        randconv: float = 0.0,
        randconv_layers: int = 1,
        shear: float = 0.0,
        aspect: float = 0.0,
        shading: float = 0.0,
        hflip_all: bool = False,
        elastic: float = 0.0,
        ampmix: float = 0.0,
    ) -> None:
        super().__init__()
        lo, hi = float(scale[0]), float(scale[1])
        values = dict(locals())
        unit = ["translate", "hflip", "background", "background_blend", "brightness", "contrast"]
        unit += ["blur", "noise", "compress", "erase", "erase_area", "p", "randconv", "ampmix"]
        checks = {key: 0 <= values[key] <= 1 for key in unit}
        checks |= {"rotation": 0 <= rotation <= 180, "scale": 0 < lo <= hi, "gamma": 0 <= gamma <= 2}
        checks |= {"shear": 0 <= shear <= 45, "aspect": 0 <= aspect <= 1, "shading": 0 <= shading <= 2}
        checks |= {"elastic": 0 <= elastic <= 0.25}
        checks |= {"randconv_layers": isinstance(randconv_layers, int) and 1 <= randconv_layers <= 20}
        for key, ok in checks.items():
            if not ok:
                raise ValueError(f"augment.{key} is out of range: {values[key]!r}")
        if not isinstance(hflip_all, bool):
            raise ValueError(f"augment.hflip_all must be true or false, got {hflip_all!r}")
        self.rotation, self.scale, self.translate, self.hflip = rotation, (lo, hi), translate, hflip
        self.background, self.background_blend = background, background_blend
        self.gamma, self.brightness, self.contrast = gamma, brightness, contrast
        self.blur, self.noise, self.compress = blur, noise, compress
        self.erase, self.erase_area, self.p = erase, erase_area, p
        self.randconv, self.randconv_layers = randconv, randconv_layers
        self.shear, self.aspect, self.shading = shear, aspect, shading
        self.hflip_all, self.elastic, self.ampmix = hflip_all, elastic, ampmix

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Augment a batch (N, C, H, W) in [0, 1]; returns a new tensor of the same shape."""
        n = x.shape[0]
        if n == 0 or (self.p == 0 and not (self.hflip_all and self.hflip > 0)):
            return x

        def rand(*shape: int) -> torch.Tensor:
            # drawn on the CPU so a CPU generator drives any device
            return torch.rand(*shape, generator=generator).to(x)

        def uniform(lo: float, hi: float) -> torch.Tensor:
            return rand(n) * (hi - lo) + lo

        def coin(prob: float) -> torch.Tensor:
            return ((rand(n) < prob) & (active > 0)).to(x.dtype).view(n, 1, 1, 1)

        active = (rand(n) < self.p).to(x.dtype)
        theta = self._theta(active, uniform).to(x)
        offset = self._elastic(x, active, uniform, rand) if self.elastic > 0 else None  # drawn only when on
        out, inside = _warp(x, theta, offset)
        bg = self._backgrounds(x, rand, uniform)
        use_bg = coin(self.background)
        edges = (x - _blur3(x)).abs()
        smooth, _ = _warp(1 - (_blur3(_blur3(edges)) * 8).clamp(0, 1), theta, offset)  # 1 on flat regions
        blend = uniform(0, self.background_blend).view(n, 1, 1, 1) * smooth * inside
        alpha = inside * (1 - blend)  # how much of each pixel is hand
        out = use_bg * (alpha * out + (1 - alpha) * bg) + (1 - use_bg) * out
        if self.randconv > 0:  # drawn only when on, so recipes without it keep their random stream
            out = self._random_conv(out, coin, uniform, rand, generator)
        if self.ampmix > 0:  # drawn only when on, like randconv
            out = self._amplitude_mix(out, coin, uniform, rand)
        if self.shading > 0:  # drawn only when on, like randconv
            out = self._shade(out, active, uniform, rand)
        out = self._photometric(out, active, uniform)
        out = self._degrade(out, coin, uniform, generator)
        return self._erase(out, coin, uniform, rand).clamp_(0, 1)

    def _theta(self, active: torch.Tensor, uniform) -> torch.Tensor:
        """Per-sample affine matrices (N, 2, 3) mapping output to input coordinates."""
        angle = uniform(-self.rotation, self.rotation) * (math.pi / 180) * active
        zoom = 1 + (uniform(*self.scale) - 1) * active
        tx, ty = uniform(-self.translate, self.translate), uniform(-self.translate, self.translate)
        flippable = torch.ones_like(active, dtype=torch.bool) if self.hflip_all else active > 0
        flip = torch.where((uniform(0, 1) < self.hflip) & flippable, -1.0, 1.0).to(active)
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        row0 = torch.stack([cos * flip, -sin, tx * 2 * active], 1)
        row1 = torch.stack([sin * flip, cos, ty * 2 * active], 1)
        theta = torch.stack([row0, row1], 1)
        if self.shear > 0 or self.aspect > 0:  # drawn only when on: other recipes keep their stream
            theta = torch.cat([theta[:, :, :2] @ self._viewpoint(active, uniform), theta[:, :, 2:]], 2)
        return theta

    def _elastic(self, x: torch.Tensor, active: torch.Tensor, uniform, rand) -> torch.Tensor:
        """A smooth random displacement of the sampling grid (N, H, W, 2): other hands' proportions.

        Sign-MNIST's 27k images come from a few signers' hands; a smooth warp (Simard et al. 2003)
        thickens and bends fingers and changes their lengths a little, which no affine map does.
        """
        n, _, h, w = x.shape
        coarse = rand(n, 2, 4, 4) * 2 - 1
        field = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False)
        strength = (uniform(0, self.elastic) * active * 2).view(n, 1, 1, 1)  # grid spans [-1, 1]
        return (field * strength).permute(0, 2, 3, 1)

    def _viewpoint(self, active: torch.Tensor, uniform) -> torch.Tensor:
        """Per-sample shear and aspect change (N, 2, 2): a hand seen from off its axis.

        Sign-MNIST shows every hand from one camera angle; a phone sees it from the side, from below,
        foreshortened. An affine shear and stretch is the first-order part of that change of view.
        """
        shear = torch.tan(uniform(-self.shear, self.shear) * (math.pi / 180) * active)
        stretch = torch.exp(uniform(-self.aspect, self.aspect) * active / 2)
        zero = torch.zeros_like(shear)
        return torch.stack(
            [torch.stack([stretch, shear * stretch], 1), torch.stack([zero, 1 / stretch], 1)], 1
        )

    @staticmethod
    def _backgrounds(x, rand, uniform):
        """Per-sample procedural backgrounds: gradient + low-frequency texture + clutter rectangles."""
        n, c, h, w = x.shape
        ys, xs = _grid(h, w, x)
        angle = uniform(0, 2 * math.pi).view(n, 1, 1)
        ramp = (torch.cos(angle) * xs + torch.sin(angle) * ys) * uniform(0, 0.5).view(n, 1, 1)
        coarse = F.interpolate(rand(n, 1, 4, 4) - 0.5, size=(h, w), mode="bicubic", align_corners=False)
        fine = F.interpolate(rand(n, 1, 10, 10) - 0.5, size=(h, w), mode="bilinear", align_corners=False)
        texture = coarse[:, 0] * uniform(0, 0.5).view(n, 1, 1) + fine[:, 0] * uniform(0, 0.2).view(n, 1, 1)
        bg = uniform(0.1, 0.9).view(n, 1, 1) + ramp + texture
        for _ in range(3):  # clutter: up to three flat rectangles of random shade
            x0, y0 = uniform(-0.2, 1.0).view(n, 1, 1), uniform(-0.2, 1.0).view(n, 1, 1)
            x1, y1 = x0 + uniform(0.1, 0.6).view(n, 1, 1), y0 + uniform(0.1, 0.6).view(n, 1, 1)
            gx, gy = (xs + 1) / 2, (ys + 1) / 2
            box = ((gx >= x0) & (gx < x1) & (gy >= y0) & (gy < y1)).to(x.dtype)
            box = box * (uniform(0, 1) < 0.5).to(x.dtype).view(n, 1, 1)
            bg = bg * (1 - box) + uniform(0, 1).view(n, 1, 1) * box
        return bg.clamp(0, 1).unsqueeze(1).expand(n, c, h, w)

    def _random_conv(self, x, coin, uniform, rand, generator):
        """Random filtering per sample, matched back to the sample's mean and std, then mixed in."""
        n, c, h, w = x.shape
        if self.randconv_layers == 1:
            size = (rand(n) * 4).floor().clamp(max=3) * 2 + 1  # 1, 3, 5 or 7
        else:
            size = torch.full((n,), 3.0).to(x)
        offsets = torch.arange(-3, 4, dtype=x.dtype, device=x.device).abs()
        reach = size.view(n, 1, 1) // 2
        within = (offsets.view(1, 7, 1) <= reach) & (offsets.view(1, 1, 7) <= reach)
        weights = torch.randn(n, 7, 7, generator=generator).to(x) * within / size.view(n, 1, 1)  # Kaiming
        kernel = weights.repeat_interleave(c, 0).unsqueeze(1)  # (n * c, 1, 7, 7): one filter per sample
        dims = (1, 2, 3)

        def standardise(t: torch.Tensor) -> torch.Tensor:
            return (t - t.mean(dims, keepdim=True)) / (t.std(dims, keepdim=True) + 1e-6)

        def filtered(t: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
            padded = F.pad(t.reshape(1, n * c, h, w), (3, 3, 3, 3), mode="replicate")
            return F.conv2d(padded, k, groups=n * c).view(n, c, h, w)

        if self.randconv_layers == 1:
            y = standardise(filtered(x, kernel))
        else:
            depth = (rand(n) * self.randconv_layers).floor() + 1  # passes per sample
            identity = (offsets.view(1, 1, 7, 1) == 0) * (offsets.view(1, 1, 1, 7) == 0)
            near_identity = kernel + identity  # small random changes per pass, so shapes survive
            gain, offset = uniform(0.5, 1.5).view(n, 1, 1, 1), uniform(-0.5, 0.5).view(n, 1, 1, 1)
            y = standardise(x)
            for step in range(1, self.randconv_layers + 1):
                stepped = torch.tanh(gain * standardise(filtered(y, near_identity)) + offset)
                y = torch.where((depth >= step).view(n, 1, 1, 1), stepped, y)
            y = standardise(y)
        y = (y * x.std(dims, keepdim=True) + x.mean(dims, keepdim=True)).clamp(0, 1)
        mix = uniform(0, 1).view(n, 1, 1, 1) * coin(self.randconv)  # weight of the filtered image
        return x + mix * (y - x)

    def _amplitude_mix(self, x, coin, uniform, rand):
        """Each chosen sample's amplitude spectrum mixed with a random partner's; its own phase, mean and spread."""
        n = x.shape[0]
        partner = torch.argsort(rand(n))
        spectrum = torch.fft.rfft2(x)
        amplitude = spectrum.abs()
        share = uniform(0, 1).view(n, 1, 1, 1) * coin(self.ampmix)
        mixed = (1 - share) * amplitude + share * amplitude[partner]
        y = torch.fft.irfft2(torch.polar(mixed, spectrum.angle()), s=x.shape[-2:])
        dims = (1, 2, 3)
        y = (y - y.mean(dims, keepdim=True)) / (y.std(dims, keepdim=True) + 1e-6)
        y = (y * x.std(dims, keepdim=True) + x.mean(dims, keepdim=True)).clamp(0, 1)
        return torch.where(share > 0, y, x)

    def _shade(self, x, active, uniform, rand):
        """Uneven light: the image times a smooth random gain field (a ramp plus a few soft blobs).

        Sign-MNIST hands are lit evenly; a phone photo has a lit side, a shadowed side and hot spots,
        which one global gamma or contrast cannot make.
        """
        n, _, h, w = x.shape
        ys, xs = _grid(h, w, x)
        angle = uniform(0, 2 * math.pi).view(n, 1, 1)
        ramp = torch.cos(angle) * xs + torch.sin(angle) * ys
        blobs = F.interpolate(rand(n, 1, 3, 3) * 2 - 1, size=(h, w), mode="bicubic", align_corners=False)[
            :, 0
        ]
        strength = (uniform(0, self.shading) * active).view(n, 1, 1)
        gain = torch.exp(strength * (ramp + blobs) / 2)
        return (x * gain.unsqueeze(1)).clamp(0, 1)

    def _photometric(self, x, active, uniform):
        """Gamma, contrast and brightness, each per sample."""
        n = x.shape[0]
        gamma = torch.exp(uniform(-self.gamma, self.gamma) * active).view(n, 1, 1, 1)
        x = x.clamp(1e-4, 1) ** gamma
        gain = (1 + uniform(-self.contrast, self.contrast) * active).view(n, 1, 1, 1)
        offset = (uniform(-self.brightness, self.brightness) * active).view(n, 1, 1, 1)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        return ((x - mean) * gain + mean + offset).clamp(0, 1)

    def _degrade(self, x, coin, uniform, generator):
        """Blur, compression-like down-up sampling with grey-level quantisation, and sensor noise."""
        n, _, h, w = x.shape
        once = _blur3(x)
        strength = uniform(0, 1).view(n, 1, 1, 1)  # 0: one pass, 1: two passes
        blurred = once + strength * (_blur3(once) - once)
        x = x + coin(self.blur) * (blurred - x)
        small = F.interpolate(x, scale_factor=0.5, mode="area")
        blocky = F.interpolate(small, size=(h, w), mode="nearest")
        levels = uniform(12, 32).view(n, 1, 1, 1).round()
        blocky = torch.round(blocky * levels) / levels
        x = x + coin(self.compress) * (blocky - x)
        sigma = uniform(0, self.noise).view(n, 1, 1, 1)
        return x + sigma * torch.randn(x.shape, generator=generator).to(x) * coin(1.0)

    def _erase(self, x, coin, uniform, rand):
        """Random erasing: one rectangle per chosen sample, filled with a flat random shade."""
        n, _, h, w = x.shape
        area = uniform(0.02, max(self.erase_area, 0.02))
        aspect = torch.exp(uniform(-0.7, 0.7))
        bw, bh = (area * aspect).sqrt().clamp(max=1), (area / aspect).sqrt().clamp(max=1)
        x0, y0 = uniform(0, 1) * (1 - bw), uniform(0, 1) * (1 - bh)
        gx = torch.linspace(0, 1, w, dtype=x.dtype, device=x.device).view(1, 1, 1, w)
        gy = torch.linspace(0, 1, h, dtype=x.dtype, device=x.device).view(1, 1, h, 1)
        v = lambda t: t.view(n, 1, 1, 1)  # noqa: E731
        box = ((gx >= v(x0)) & (gx <= v(x0 + bw)) & (gy >= v(y0)) & (gy <= v(y0 + bh))).to(x.dtype)
        box = box * coin(self.erase)
        return x * (1 - box) + v(rand(n)) * box

    def extra_repr(self) -> str:
        keys = ["rotation", "scale", "translate", "hflip", "background", "background_blend", "gamma"]
        keys += ["brightness", "contrast", "blur", "noise", "compress", "erase", "erase_area", "p"]
        keys += ["randconv", "randconv_layers", "shear", "aspect", "shading"]
        keys += ["hflip_all", "elastic", "ampmix"]
        return ", ".join(f"{k}={getattr(self, k)}" for k in keys)
