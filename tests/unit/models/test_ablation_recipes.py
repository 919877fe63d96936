"""Every recipe of `benchmarks/real_ablation.py` still composes with the conf tree.

The ablation takes hours, so a recipe that a config change broke would otherwise surface only
mid-sweep. Each recipe must compose, build its augmentation, net and any weight averaging, and
have a row name for the README table. The trial code for consistency training (two augmented
views, Jensen-Shannon loss), for CutMix/MixUp and for sharpness-aware minimisation is checked
on a real one-step fit.
"""

import math
from pathlib import Path
from typing import Any

import pytest
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import EMAWeightAveraging

from tests.fixtures.scripts import load_benchmark
from tests.fixtures.train import compose_train, quiet_trainer

ABLATION = load_benchmark("real_ablation")


@pytest.mark.parametrize("recipe", sorted(ABLATION.RECIPES))
def test_every_recipe_composes_and_builds(recipe: str) -> None:
    cfg = compose_train([*ABLATION.RECIPES[recipe], "logger=none"])
    augment = instantiate(cfg.augment)
    net = instantiate(cfg.model).eval()
    assert net(torch.rand(2, 1, 28, 28)).shape == (2, 24)
    images = torch.rand(4, 1, 28, 28)
    assert augment(images, generator=torch.Generator().manual_seed(0)).shape == images.shape
    assert recipe in ABLATION.NAMES


def test_recipe_overrides_reach_the_config() -> None:
    """Spot checks that an override is not silently dropped (a later value wins in Hydra)."""
    assert compose_train(ABLATION.RECIPES["prorandconv-p0.7"]).augment.p == 0.7
    assert compose_train(ABLATION.RECIPES["half-prorandconv-sgd"]).optimizer._target_ == "torch.optim.SGD"
    ema = compose_train(ABLATION.RECIPES["half-prorandconv-ema"]).callbacks.ema
    callback = instantiate(ema)
    assert isinstance(callback, EMAWeightAveraging)
    assert (
        instantiate(compose_train(ABLATION.RECIPES["half-prorandconv-image_norm"]).model).image_norm is True
    )
    assert set(ABLATION.CONSISTENCY) <= set(ABLATION.RECIPES)
    assert set(ABLATION.MIXING) <= set(ABLATION.RECIPES)
    assert set(ABLATION.SHARPNESS) <= set(ABLATION.RECIPES)


def test_jensen_shannon_is_zero_on_agreement_symmetric_and_bounded() -> None:
    logits = torch.randn(8, 24, generator=torch.Generator().manual_seed(0))
    other = torch.randn(8, 24, generator=torch.Generator().manual_seed(1)) * 5
    assert float(ABLATION.jensen_shannon(logits, logits)) == pytest.approx(0.0, abs=1e-6)
    forward, backward = ABLATION.jensen_shannon(logits, other), ABLATION.jensen_shannon(other, logits)
    torch.testing.assert_close(forward, backward)
    assert 0.01 < float(forward) <= math.log(2)
    one_hot = torch.eye(24)[:2] * 100  # two sure, different answers: the bound
    assert float(ABLATION.jensen_shannon(one_hot[:1], one_hot[1:])) == pytest.approx(math.log(2), rel=1e-3)


def _build(processed: Path, recipe: str) -> tuple[Any, Any]:
    """The recipe's datamodule and module on the tiny processed set, 16 images a batch."""
    from fingerspell.training.build import build_datamodule, build_module

    cfg = compose_train(
        [
            *ABLATION.RECIPES[recipe],
            "logger=none",
            f"paths.processed_dir={processed}",
            "data.datamodule.batch_size=16",
        ]
    )
    datamodule = build_datamodule(cfg)
    return datamodule, build_module(cfg, datamodule)


def _fit_one_step(module: Any, datamodule: Any) -> None:
    """One real optimiser step through Lightning (the trial code runs inside `fit`)."""
    quiet_trainer(max_steps=1, limit_val_batches=0).fit(module, datamodule=datamodule)


def test_two_view_training_trains_on_two_views_with_the_consistency_loss(tiny_processed: Path) -> None:
    """The swapped datamodule hands the module two independently augmented copies of each batch,
    and the loss is cross-entropy on the first view plus weight x JSD between the views."""
    datamodule, module = _build(tiny_processed, "half-prorandconv-jsd")
    ABLATION.two_view_training(datamodule, module, 10.0)
    seen: dict[str, object] = {}
    step = type(module).training_step

    def spy(self, batch, batch_idx):  # type: ignore[no-untyped-def]
        state = torch.get_rng_state()  # dropout: recompute the loss with the same draws
        loss = step(self, batch, batch_idx)
        torch.set_rng_state(state)
        x, y = batch
        logits = self(x)
        first, second = logits[: len(y)], logits[len(y) :]
        ce = torch.nn.functional.cross_entropy(first, y, label_smoothing=self.label_smoothing)
        seen.update(
            x=x.detach(),
            y=y,
            loss=loss.detach(),
            expected=(ce + 10.0 * ABLATION.jensen_shannon(first, second)).detach(),
        )
        return loss

    type(module).training_step = spy  # the class is local to this run's swap
    _fit_one_step(module, datamodule)
    x, y = seen["x"], seen["y"]
    assert x.shape == (32, 1, 28, 28)
    assert y.shape == (16,)
    assert not torch.equal(x[:16], x[16:]), "the two views are augmented independently"
    torch.testing.assert_close(seen["loss"], seen["expected"])


@pytest.mark.parametrize("recipe", sorted(ABLATION.MIXING))
def test_mixed_training_trains_on_mixed_images_and_their_soft_labels(
    tiny_processed: Path, recipe: str
) -> None:
    """The swapped module mixes each training batch (torchvision's CutMix or MixUp) and takes
    cross-entropy against the mixed labels: two letters per image, weights summing to one."""
    datamodule, module = _build(tiny_processed, recipe)
    ABLATION.mixed_training(module, *ABLATION.MIXING[recipe])
    seen: dict[str, torch.Tensor] = {}
    real_forward = type(module).forward

    def spy_forward(self, x):  # type: ignore[no-untyped-def]
        seen["mixed"] = x.detach().clone()
        logits = real_forward(self, x)
        seen["logits"] = logits.detach()
        return logits

    step = type(module).training_step

    def spy_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
        x, y = batch
        seen.update(x=x.detach().clone(), y=y)
        loss = step(self, batch, batch_idx)
        seen["loss"] = loss.detach()
        return loss

    type(module).forward, type(module).training_step = spy_forward, spy_step  # local class
    torch.manual_seed(1)  # a draw whose mixing weight is not ~0 or ~1
    _fit_one_step(module, datamodule)
    x, y, mixed = seen["x"], seen["y"], seen["mixed"]
    assert mixed.shape == x.shape == (16, 1, 28, 28)
    assert not torch.equal(mixed, x), "the batch was mixed"
    # each image was mixed with its neighbour in the batch (torchvision rolls it by one);
    # recover the batch's one mixing weight from the pixels
    partner = x.roll(1, 0)
    if ABLATION.MIXING[recipe][0] == "MixUp":
        diff = x - partner  # least squares for the one blend weight of the batch
        lam = float(((mixed - partner) * diff).sum() / (diff * diff).sum())
        torch.testing.assert_close(mixed, lam * x + (1 - lam) * partner)
    else:
        from_x = (mixed == x) & (x != partner)
        lam = float(from_x.sum() / (x != partner).sum())
    soft = torch.zeros(16, 24)
    soft[torch.arange(16), y] += lam
    soft[torch.arange(16), y.roll(1, 0)] += 1 - lam
    expected = torch.nn.functional.cross_entropy(seen["logits"], soft, label_smoothing=module.label_smoothing)
    torch.testing.assert_close(seen["loss"], expected, atol=1e-4, rtol=0)
    assert 0.02 < lam < 0.98


def _row(recipe: str, seed: int, epochs: int, label: str | None = None, box: float = 0.2) -> dict:
    run = {
        "recipe": recipe,
        "seed": seed,
        "epochs": epochs,
        "device": "cpu",
        "where": "2-core CPU",
        "test_acc": 0.99,
    }
    for reading in ("full", "box"):
        run |= {f"dev_{reading}_top1": box, f"dev_{reading}_top1_ci": [box - 0.03, box + 0.03]}
    return run | ({"label": label} if label else {})


def test_table_orders_schedules_and_puts_a_labelled_rerun_after_its_schedule() -> None:
    recipe = "half-prorandconv"
    runs = [_row(recipe, s, 24) for s in range(3)]
    runs += [_row(recipe, s, 16, "rerun", box=0.1 * (s + 1)) for s in range(3)]
    runs += [_row(recipe, s, 16) for s in range(3)] + [_row("classic", 0, 6, "pipeline default")]
    lines = ABLATION.table(runs).splitlines()[2:]
    names = [line.split(" | ")[0].strip("| *") for line in lines]
    schedules = [line.split(" | ")[1] for line in lines]
    assert names[0] == "pipeline default"  # the recipe order of RECIPES comes first
    assert [s.split(" epochs")[0] for s in schedules[1:]] == ["16"] * 8 + ["24"] * 4
    assert names[1:5] == [ABLATION.NAMES[recipe]] * 3 + [f"{ABLATION.NAMES[recipe]}, mean of 3 seeds"]
    assert names[5:9] == ["rerun"] * 3 + ["rerun, mean of 3 seeds"]
    assert lines[8].endswith("| **20.0%** |")  # the mean of 10 / 20 / 30% on boxes


def test_sharpness_aware_step_takes_the_gradient_at_the_perturbed_weights(tiny_processed: Path) -> None:
    """SAM: the second forward pass runs at w + rho * g / |g| (g the gradient at w), the optimizer
    then steps from w (moved back) with the gradient taken there, and batch norm's running
    statistics count the first pass only."""
    rho = ABLATION.SHARPNESS["half-prorandconv-sam"]
    datamodule, module = _build(tiny_processed, "half-prorandconv-sam")
    ABLATION.sharpness_aware_training(module, rho)
    norm = next(m for m in module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm))
    calls: list[dict[str, Any]] = []
    step = type(module).training_step

    def spy_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
        calls.append(
            {
                "batch": batch[0].detach().clone(),
                "params": [p.detach().clone() for p in self.parameters()],
                # the closure zeroes the gradients after the step function: these are the last pass's
                "grads": [None if p.grad is None else p.grad.clone() for p in self.parameters()],
                "running_mean": norm.running_mean.clone(),
            }
        )
        return step(self, batch, batch_idx)

    def spy_before_step(self, optimizer):  # type: ignore[no-untyped-def]
        calls.append(
            {
                "params": [p.detach().clone() for p in self.parameters()],
                "grads": [p.grad.clone() for p in self.parameters()],
                "running_mean": norm.running_mean.clone(),
            }
        )

    type(module).training_step, type(module).on_before_optimizer_step = spy_step, spy_before_step
    _fit_one_step(module, datamodule)
    first, second, at_step = calls
    assert torch.equal(first["batch"], second["batch"]), "both passes see the same batch"
    g = second["grads"]  # the gradient at w, left by the first pass
    g_norm = torch.linalg.vector_norm(torch.stack([t.norm() for t in g]))
    moved = [b - a for a, b in zip(first["params"], second["params"], strict=True)]
    for delta, grad in zip(moved, g, strict=True):
        torch.testing.assert_close(delta, rho * grad / g_norm, atol=1e-6, rtol=1e-4)
    assert float(torch.linalg.vector_norm(torch.stack([d.norm() for d in moved]))) == pytest.approx(
        rho, rel=1e-4
    )
    for back, start in zip(at_step["params"], first["params"], strict=True):
        torch.testing.assert_close(back, start, atol=1e-6, rtol=0)
    assert any(not torch.allclose(a, b) for a, b in zip(at_step["grads"], g, strict=True)), (
        "the optimizer steps with the gradient at the perturbed weights, not at w"
    )
    assert not torch.equal(second["running_mean"], first["running_mean"]), "the first pass updates batch norm"
    torch.testing.assert_close(at_step["running_mean"], second["running_mean"], atol=0, rtol=0)
