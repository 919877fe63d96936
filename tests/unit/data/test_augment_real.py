"""RealAugment (`augment=real`): seeded, in range, each ingredient doing its job, training batches only."""

import math
from pathlib import Path

import lightning as L
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn

from fingerspell.configs import CONFIG_DIR
from fingerspell.data.augment_real import RealAugment
from fingerspell.data.datamodule import SignMNISTDataModule
from fingerspell.data.processed import load_split
from tests.fixtures.train import quiet_trainer

OFF = {
    "rotation": 0.0,
    "scale": (1.0, 1.0),
    "translate": 0.0,
    "hflip": 0.0,
    "background": 0.0,
    "background_blend": 0.0,
    "gamma": 0.0,
    "brightness": 0.0,
    "contrast": 0.0,
    "blur": 0.0,
    "noise": 0.0,
    "compress": 0.0,
    "erase": 0.0,
    "erase_area": 0.1,
    "p": 1.0,
}


def only(**params) -> RealAugment:
    """Every ingredient off except `params`."""
    return RealAugment(**(OFF | params))


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture
def batch() -> torch.Tensor:
    """Smooth random images (the blur and the soft in-frame edge leave smooth images nearly alone)."""
    coarse = torch.rand(16, 1, 7, 7, generator=gen(0))
    return nn.functional.interpolate(coarse, size=(28, 28), mode="bilinear", align_corners=False)


@pytest.fixture
def real() -> RealAugment:
    """The shipped `conf/augment/real.yaml`, so the tests cover what training uses."""
    return instantiate(OmegaConf.load(f"{CONFIG_DIR}/augment/real.yaml"))


def test_shape_dtype_range_and_input_untouched(real: RealAugment, batch: torch.Tensor) -> None:
    before = batch.clone()
    out = real(batch, generator=gen(1))
    assert out.shape == batch.shape
    assert out.dtype == batch.dtype
    assert out.min() >= 0
    assert out.max() <= 1
    assert torch.equal(batch, before), "the input batch is not modified"
    assert not torch.allclose(out, batch, atol=0.05), "the shipped recipe changes the images"


def test_same_seed_same_output_other_seed_other_output(real: RealAugment, batch: torch.Tensor) -> None:
    a, b, c = real(batch, gen(3)), real(batch, gen(3)), real(batch, gen(4))
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_all_off_is_identity_up_to_interpolation(batch: torch.Tensor) -> None:
    torch.testing.assert_close(only()(batch, gen(0)), batch, atol=1e-5, rtol=0)


def test_p_zero_is_identity(real: RealAugment, batch: torch.Tensor) -> None:
    real.p = 0.0
    assert torch.equal(real(batch, gen(0)), batch)


def test_hflip_one_mirrors(batch: torch.Tensor) -> None:
    torch.testing.assert_close(only(hflip=1.0)(batch, gen(0)), batch.flip(-1), atol=1e-5, rtol=0)


def test_hflip_all_mirrors_the_untouched_samples_too(batch: torch.Tensor) -> None:
    """With `hflip_all`, the flip no longer waits for `p`: left and right hands come equally often."""
    torch.testing.assert_close(only(hflip=1.0, hflip_all=True, p=0.0)(batch, gen(0)), batch.flip(-1))
    assert torch.equal(only(hflip=1.0, p=0.0)(batch, gen(0)), batch)
    half = only(hflip=1.0, p=0.5)(batch, gen(0))
    mirrored = [torch.allclose(h, b.flip(-1), atol=1e-5) for h, b in zip(half, batch, strict=True)]
    assert 0 < sum(mirrored) < len(batch), "without it only the augmented half is mirrored"
    every = only(hflip=1.0, p=0.5, hflip_all=True)(batch, gen(0))
    torch.testing.assert_close(every, batch.flip(-1), atol=1e-5, rtol=0)


def test_elastic_moves_pixels_by_a_smooth_bounded_amount() -> None:
    """On a ramp whose value is the x (or y) coordinate, out - in is the displacement itself: at most
    `elastic` of the side, non-zero, and smooth (no tearing between neighbouring pixels)."""
    ramp = torch.linspace(0, 1, 28).view(1, 1, 1, 28).expand(16, 1, 28, 28).contiguous()
    for image in (ramp, ramp.transpose(-1, -2).contiguous()):
        moved = only(elastic=0.1)(image, gen(0)) - image
        interior = moved[..., 2:-2, 2:-2]  # the border clamps the sample and hides the shift
        assert interior.abs().max() <= 0.1 + 1 / 27
        assert interior.abs().flatten(1).mean(1).gt(0.005).sum() >= 12, "most samples are warped"
        steps = (moved[..., 1:, :] - moved[..., :-1, :]).abs(), (moved[..., 1:] - moved[..., :-1]).abs()
        assert max(float(step.max()) for step in steps) < 0.5 * float(interior.abs().max())
    assert not torch.equal(only(elastic=0.1)(ramp, gen(0)), only(elastic=0.1)(ramp, gen(1)))


def test_shear_tilts_columns_and_keeps_rows() -> None:
    """A shear along x moves each row sideways by an amount that grows with its height: a vertical
    bar leans, a horizontal bar (the same in every column) stays where it was."""
    vertical = torch.zeros(16, 1, 28, 28)
    vertical[..., 12:16] = 1.0
    horizontal = vertical.transpose(-1, -2).contiguous()
    sheared = only(shear=30.0)(vertical, gen(0))
    peak = lambda rows: sheared[:, 0, rows, :].mean(1).argmax(-1).float()  # noqa: E731
    lean = (peak(slice(0, 3)) - peak(slice(25, 28))).abs()
    assert (lean >= 3).sum() >= 8, f"most bars lean: shifts {lean.tolist()}"
    assert (lean[lean >= 3] <= 2 * 14 * math.tan(math.radians(30)) + 2).all()
    middle = sheared[:, 0, 13:15, :].mean(1).argmax(-1)
    assert ((middle >= 11) & (middle <= 16)).all(), "the centre row does not move"
    torch.testing.assert_close(only(shear=30.0)(horizontal, gen(0)), horizontal, atol=2e-4, rtol=0)
    assert torch.equal(only(shear=30.0, p=0.0)(vertical, gen(0)), vertical)


def test_aspect_stretches_one_axis_and_squeezes_the_other() -> None:
    """A stretch by s along x and 1/s along y: the blob's width/height ratio changes, its area stays."""
    blob = torch.zeros(16, 1, 28, 28)
    blob[..., 9:19, 9:19] = 1.0
    out = only(aspect=0.5)(blob, gen(0))[:, 0] > 0.5
    width = out.any(1).sum(-1).float()
    height = out.any(2).sum(-1).float()
    ratio = width / height
    assert ratio.max() > 1.2, f"ratios {ratio.tolist()}"
    assert ratio.min() < 1 / 1.2, f"ratios {ratio.tolist()}"
    assert (ratio < math.exp(0.5) * 1.25).all()
    assert (ratio > math.exp(-0.5) / 1.25).all()
    area = out.sum((1, 2)).float()
    assert ((area - 100).abs() <= 20).all(), f"areas {area.tolist()}"


def test_shading_is_a_smooth_light_field_that_multiplies_the_image() -> None:
    """Uneven light: each sample times its own smooth gain field, the same for any image content."""
    dim, bright = torch.full((8, 1, 28, 28), 0.2), torch.full((8, 1, 28, 28), 0.4)
    lit_dim, lit_bright = only(shading=1.0)(dim, gen(0)), only(shading=1.0)(bright, gen(0))
    torch.testing.assert_close(lit_bright, 2 * lit_dim, atol=1e-4, rtol=1e-3)  # a gain, not an offset
    gain = lit_dim / 0.2
    assert gain.flatten(1).std(1).gt(0.02).sum() >= 6, "most samples get visibly uneven light"
    assert gain.min() > math.exp(-1.5)
    assert gain.max() < math.exp(1.5)
    steps = (gain[..., 1:, :] - gain[..., :-1, :]).abs().max(), (gain[..., 1:] - gain[..., :-1]).abs().max()
    assert max(steps) < 0.25, "smooth: no jumps between neighbouring pixels"
    assert not torch.equal(lit_dim, only(shading=1.0)(dim, gen(1)))


def test_zoomed_out_hand_sits_on_a_background_in_the_margin() -> None:
    flat = torch.full((8, 1, 28, 28), 0.5)
    plain = only(scale=(0.5, 0.5))(flat, gen(0))
    composed = only(scale=(0.5, 0.5), background=1.0)(flat, gen(0))
    centre = (slice(None), 0, slice(11, 17), slice(11, 17))
    torch.testing.assert_close(composed[centre], flat[centre], atol=1e-5, rtol=0)  # the hand is kept
    torch.testing.assert_close(plain, flat, atol=1e-5, rtol=0)  # no background: border repeats
    margin = composed[:, 0, :4, :].flatten(1)
    assert (margin - 0.5).abs().mean(dim=1).min() > 0.01, "each sample's margin is a new background"
    assert margin.std(dim=0).mean() > 0.05, "backgrounds differ between samples"


def test_erase_one_fills_a_flat_rectangle(batch: torch.Tensor) -> None:
    out = only(erase=1.0, erase_area=0.1)(batch, gen(0))
    changed = (out - batch).abs() > 1e-6
    for i in range(len(out)):
        rows, cols = changed[i, 0].any(dim=1).nonzero(), changed[i, 0].any(dim=0).nonzero()
        assert len(rows) > 0, f"sample {i} has an erased patch"
        assert len(cols) > 0, f"sample {i} has an erased patch"
        patch = out[i, 0, rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        assert patch.numel() <= 0.2 * 28 * 28
        assert patch.std() < 1e-6, "the patch is one flat shade"


def test_noise_is_zero_mean_and_bounded(batch: torch.Tensor) -> None:
    mid = torch.full((64, 1, 28, 28), 0.5)
    out = only(noise=0.1)(mid, gen(0))
    assert abs(float(out.mean()) - 0.5) < 0.01
    assert 0.01 < float((out - 0.5).std()) < 0.1


def test_blur_and_compress_remove_fine_detail() -> None:
    checker = (torch.arange(28).view(1, 28) + torch.arange(28).view(28, 1)) % 2
    x = checker.float().expand(4, 1, 28, 28).clone()
    for aug in (only(blur=1.0), only(compress=1.0)):
        out = aug(x, gen(0))
        assert float((out[..., 1:] - out[..., :-1]).abs().mean()) < 0.5, aug


def test_gamma_brightens_or_darkens_monotonically(batch: torch.Tensor) -> None:
    out = only(gamma=1.0)(batch, gen(0))
    flat_in, flat_out = batch.flatten(1), out.flatten(1)
    order_in, order_out = flat_in.argsort(dim=1), flat_out.argsort(dim=1)
    assert (order_in == order_out).float().mean() > 0.95, "gamma keeps the order of pixel values"
    assert not torch.allclose(out, batch, atol=0.01)


def test_randconv_keeps_each_sample_mean_and_spread_and_changes_texture(batch: torch.Tensor) -> None:
    x = batch * 0.6 + 0.2  # away from 0 and 1, so the clamp leaves the moments alone
    out = only(randconv=1.0)(x, gen(0))
    assert out.shape == x.shape
    assert float(out.min()) >= 0
    assert float(out.max()) <= 1
    dims = (1, 2, 3)
    assert torch.allclose(out.mean(dims), x.mean(dims), atol=0.03)
    changed = (out - x).abs().mean(dims)
    assert int((changed > 1e-3).sum()) >= 12, "most samples get a filter mixed in (weight ~ U(0, 1))"
    assert torch.equal(only(randconv=1.0)(x, gen(0)), out), "seeded"


def test_progressive_randconv_is_seeded_and_keeps_each_sample_mean(batch: torch.Tensor) -> None:
    x = batch * 0.6 + 0.2
    aug = only(randconv=1.0, randconv_layers=4)
    out = aug(x, gen(1))
    assert torch.equal(aug(x, gen(1)), out)
    assert not torch.equal(aug(x, gen(2)), out)
    assert torch.allclose(out.mean((1, 2, 3)), x.mean((1, 2, 3)), atol=0.03)
    assert not torch.equal(out, only(randconv=1.0)(x, gen(1))), "a different filter family"


def test_ampmix_keeps_each_sample_phase_mean_and_spread_and_takes_a_partner_amplitude(
    batch: torch.Tensor,
) -> None:
    """FACT: the edges stay where they are (phase), their strengths move towards another sample's."""
    coarse = torch.rand(16, 1, 28, 28, generator=gen(5))
    x = (batch * 0.5 + coarse * 0.1 + 0.2).clamp(0, 1)  # mixed textures, away from 0 and 1
    out = only(ampmix=1.0)(x, gen(0))
    dims = (1, 2, 3)
    torch.testing.assert_close(out.mean(dims), x.mean(dims), atol=0.02, rtol=0)
    torch.testing.assert_close(out.std(dims), x.std(dims), atol=0.02, rtol=0)
    before, after = (
        torch.fft.rfft2(x - x.mean(dims, keepdim=True)),
        torch.fft.rfft2(out - out.mean(dims, keepdim=True)),
    )
    strong = before.abs() > 0.5  # phases of strong frequencies (weak ones round off)
    turned = torch.angle(after[strong] * before[strong].conj()).abs()
    assert float(turned.quantile(0.9)) < 0.2, "the phase, so the shape, is kept"
    moved = after.abs() / after.abs().sum(dims, keepdim=True) - before.abs() / before.abs().sum(
        dims, keepdim=True
    )
    assert int((moved.abs().sum(dims) > 0.05).sum()) >= 10, "most samples take on another amplitude spectrum"
    assert torch.equal(only(ampmix=1.0)(x, gen(0)), out), "seeded"
    assert not torch.equal(only(ampmix=1.0)(x, gen(1)), out)


def test_randconv_off_keeps_the_recipe_random_stream(real: RealAugment, batch: torch.Tensor) -> None:
    """Adding the ingredient must not change seeded runs that leave it off: the sum below is the
    shipped recipe's output from before `randconv` existed (same batch, seed 3)."""
    assert real.randconv == 0.0
    assert real.ampmix == 0.0
    out = real(batch, gen(3))
    assert float(out.double().sum()) == pytest.approx(5529.1414, abs=1e-3)
    on = RealAugment(**{k: getattr(real, k) for k in OFF}, randconv=0.5)
    assert not torch.equal(on(batch, gen(3)), out)


@pytest.mark.parametrize(
    "bad",
    [
        {"randconv": 1.5},
        {"randconv_layers": 0},
        {"scale": (0.0, 1.0)},
        {"hflip": 1.5},
        {"noise": -0.1},
        {"gamma": 3.0},
        {"rotation": 200.0},
        {"shear": 60.0},
        {"aspect": -0.1},
        {"shading": 3.0},
        {"hflip_all": "yes"},
        {"elastic": 0.5},
        {"ampmix": -0.5},
    ],
)
def test_out_of_range_params_are_refused(bad: dict) -> None:
    with pytest.raises(ValueError, match=f"augment.{next(iter(bad))}"):
        only(**bad)


class _Recorder(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net, self.seen = nn.Linear(784, 24), {"train": [], "val": []}

    def _step(self, stage: str, batch) -> torch.Tensor:
        self.seen[stage].append(batch[0].clone())
        return nn.functional.cross_entropy(self.net(batch[0].flatten(1)), batch[1])

    def training_step(self, batch, batch_idx):
        return self._step("train", batch)

    def validation_step(self, batch, batch_idx):
        self._step("val", batch)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def test_datamodule_applies_it_to_training_batches_only(
    crafted_processed: Path, tmp_path: Path, real: RealAugment
) -> None:
    dm = SignMNISTDataModule(crafted_processed, batch_size=16, eval_batch_size=50, augment=real, seed=0)
    model = _Recorder()
    trainer = quiet_trainer(
        default_root_dir=tmp_path, max_epochs=1, limit_train_batches=2, num_sanity_val_steps=0
    )
    trainer.fit(model, datamodule=dm)
    raw = {img.tobytes() for img in load_split(crafted_processed, "train")[0]}
    train = (torch.cat(model.seen["train"]) * 255).round().to(torch.uint8).numpy()
    assert sum(img.tobytes() in raw for img in train) == 0, "every training image is augmented"
    val = torch.cat(model.seen["val"])
    torch.testing.assert_close(val, torch.from_numpy(load_split(crafted_processed, "val")[0]).float() / 255)
