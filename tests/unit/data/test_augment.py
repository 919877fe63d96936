"""BatchAugment: per-sample random transforms, in range, seeded, and each one doing its job."""

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from fingerspell.configs import CONFIG_DIR
from fingerspell.data.augment import BatchAugment

NONE = {
    "rotation": 0.0,
    "scale": (1.0, 1.0),
    "translate": 0.0,
    "brightness": 0.0,
    "contrast": 0.0,
    "hflip": 0.0,
}


def make(p: float = 1.0, **params) -> BatchAugment:
    return BatchAugment(**(NONE | params), p=p)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture
def batch() -> torch.Tensor:
    return torch.rand(32, 1, 28, 28, generator=gen(0))


@pytest.fixture
def classic() -> BatchAugment:
    """The shipped `conf/augment/classic.yaml`, so the tests cover what training uses."""
    return instantiate(OmegaConf.load(f"{CONFIG_DIR}/augment/classic.yaml"))


def blob(cx: float = 14.0, cy: float = 14.0, sigma: float = 3.0, n: int = 16) -> torch.Tensor:
    """A round grey blob (N, 1, 28, 28): invariant under rotation about the centre."""
    yy, xx = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    image = torch.exp(-((xx + 0.5 - cx) ** 2 + (yy + 0.5 - cy) ** 2) / (2 * sigma**2))
    return image.expand(n, 1, 28, 28).clone()


def centroid(x: torch.Tensor) -> torch.Tensor:
    """(N, 2) intensity centroids (x, y) in pixels."""
    yy, xx = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    mass = x.sum(dim=(1, 2, 3))
    return torch.stack([(x[:, 0] * xx).sum(dim=(1, 2)) / mass, (x[:, 0] * yy).sum(dim=(1, 2)) / mass], 1)


def test_shape_dtype_and_range(classic: BatchAugment, batch: torch.Tensor) -> None:
    out = classic(batch, generator=gen(1))
    assert out.shape == batch.shape
    assert out.dtype == torch.float32
    assert out.min() >= 0
    assert out.max() <= 1
    assert not torch.equal(out, batch)


def test_input_is_not_modified(classic: BatchAugment, batch: torch.Tensor) -> None:
    copy = batch.clone()
    classic(batch, generator=gen(1))
    assert torch.equal(batch, copy)


def test_range_holds_for_extreme_inputs(classic: BatchAugment) -> None:
    for value in (0.0, 1.0):
        out = classic(torch.full((8, 1, 28, 28), value), generator=gen(3))
        assert out.min() >= 0
        assert out.max() <= 1


def test_same_seed_same_output(classic: BatchAugment, batch: torch.Tensor) -> None:
    assert torch.equal(classic(batch, generator=gen(7)), classic(batch, generator=gen(7)))


def test_other_seed_other_output(classic: BatchAugment, batch: torch.Tensor) -> None:
    assert (classic(batch, generator=gen(7)) - classic(batch, generator=gen(8))).abs().max() > 0.1


def test_one_generator_advances(classic: BatchAugment, batch: torch.Tensor) -> None:
    g = gen(7)
    assert not torch.equal(classic(batch, generator=g), classic(batch, generator=g))


def test_each_sample_gets_its_own_transform(classic: BatchAugment) -> None:
    same = blob(cx=10, cy=12, n=8)
    out = classic(same, generator=gen(2))
    for i in range(1, 8):
        assert (out[i] - out[0]).abs().max() > 1e-3


def test_all_zero_params_is_identity(batch: torch.Tensor) -> None:
    torch.testing.assert_close(make()(batch, generator=gen(0)), batch, atol=1e-5, rtol=0)


def test_p_zero_is_identity(classic: BatchAugment, batch: torch.Tensor) -> None:
    aug = BatchAugment(
        rotation=10, scale=(0.9, 1.1), translate=0.1, brightness=0.1, contrast=0.2, hflip=0.5, p=0
    )
    torch.testing.assert_close(aug(batch, generator=gen(0)), batch)


def test_p_half_leaves_some_samples_alone(batch: torch.Tensor) -> None:
    aug = make(p=0.5, rotation=30, brightness=0.3)
    out = aug(batch.repeat(4, 1, 1, 1), generator=gen(4))
    untouched = ((out - batch.repeat(4, 1, 1, 1)).flatten(1).abs().amax(1) < 1e-5).float().mean()
    assert 0.2 < untouched < 0.8


def test_no_flip_by_default(classic: BatchAugment) -> None:
    assert classic.hflip == 0


def test_hflip_one_mirrors(batch: torch.Tensor) -> None:
    torch.testing.assert_close(make(hflip=1.0)(batch, generator=gen(0)), batch.flip(-1), atol=1e-5, rtol=0)


def test_rotation_keeps_a_centred_round_blob(batch: torch.Tensor) -> None:
    x = blob()
    out = make(rotation=180)(x, generator=gen(5))
    torch.testing.assert_close(out, x, atol=0.05, rtol=0)  # bilinear blur at the peak
    assert (make(rotation=180)(batch, generator=gen(5)) - batch).abs().max() > 0.3, "but turns other images"


def test_translation_moves_the_centroid_within_bounds() -> None:
    x = blob(sigma=2.0, n=64)
    shift = centroid(make(translate=0.1)(x, generator=gen(6))) - centroid(x)
    assert shift.abs().max() <= 0.1 * 28 + 0.05
    assert shift.abs().max() > 0.5
    assert shift.std(0).min() > 0.3, "shifts vary between samples, on both axes"


def test_scale_zooms_about_the_centre() -> None:
    x = blob(sigma=3.0, n=64)
    out = make(scale=(0.5, 0.5))(x, generator=gen(7))
    torch.testing.assert_close(centroid(out), centroid(x), atol=0.05, rtol=0)
    assert out.sum() < 0.35 * x.sum(), "halving the size quarters the blob's mass"


def test_brightness_adds_a_per_sample_offset() -> None:
    x = torch.rand(32, 1, 28, 28, generator=gen(1)) * 0.2 + 0.4  # no clamping at +-0.3
    delta = (make(brightness=0.3)(x, generator=gen(8)) - x).flatten(1)
    offsets = delta.mean(1)
    torch.testing.assert_close(delta, offsets[:, None].expand_as(delta), atol=1e-5, rtol=0)
    assert offsets.abs().max() <= 0.3 + 1e-6
    assert offsets.std() > 0.05


def test_contrast_scales_around_the_mean() -> None:
    x = torch.rand(32, 1, 28, 28, generator=gen(2)) * 0.2 + 0.4
    out = make(contrast=0.5)(x, generator=gen(9))
    torch.testing.assert_close(out.mean(dim=(1, 2, 3)), x.mean(dim=(1, 2, 3)), atol=1e-5, rtol=0)
    ratio = out.flatten(1).std(1) / x.flatten(1).std(1)
    assert ratio.min() >= 0.5 - 1e-4
    assert ratio.max() <= 1.5 + 1e-4
    assert ratio.std() > 0.1


def test_empty_batch() -> None:
    assert make(rotation=10)(torch.empty(0, 1, 28, 28)).shape == (0, 1, 28, 28)


@pytest.mark.parametrize(
    "bad",
    [
        {"rotation": -1.0},
        {"rotation": 181.0},
        {"scale": (1.2, 1.1)},
        {"scale": (0.0, 1.0)},
        {"translate": 1.5},
        {"brightness": -0.1},
        {"contrast": 2.0},
        {"hflip": 1.5},
    ],
)
def test_out_of_range_params_are_refused(bad: dict) -> None:
    key = next(iter(bad))
    with pytest.raises(ValueError, match=rf"augment\.{key} is out of range"):
        make(**bad)


def test_p_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match=r"augment\.p is out of range"):
        make(p=1.5)
