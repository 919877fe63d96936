"""Every recipe of `benchmarks/real_ablation.py` still composes with the conf tree.

The ablation takes hours, so a recipe that a config change broke would otherwise surface only
mid-sweep. Each recipe must compose, build its augmentation, net and any weight averaging, and
have a row name for the README table.
"""

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import EMAWeightAveraging

from tests.fixtures.train import compose_train

SCRIPT = Path(__file__).resolve().parents[3] / "benchmarks" / "real_ablation.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("real_ablation", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ABLATION = _load()


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
    assert set(ABLATION.CONSISTENCY) <= set(ABLATION.RECIPES)
