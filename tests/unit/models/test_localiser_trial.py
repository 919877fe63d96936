"""The localiser trial's composites put the hand where their targets say, mirrors included.

A target that drifted from the pasted hand (a flip applied to the image but not the box, a
scale off by the crop's margin) would train a localiser to point beside hands, and the trial
would then measure the bug instead of the idea.
"""

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import torch

SCRIPT = Path(__file__).resolve().parents[3] / "benchmarks" / "localiser_trial.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("localiser_trial", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TRIAL = _load()


def test_targets_sit_on_the_pasted_hand_and_follow_the_mirror() -> None:
    hands = torch.rand(64, 1, 28, 28)
    images, targets, alpha = TRIAL.composites(hands, torch.Generator().manual_seed(3))
    size = TRIAL.SIZE
    assert images.shape == (64, 1, size, size)
    assert float(images.min()) >= 0
    assert float(images.max()) <= 1
    grid = (torch.arange(size, dtype=torch.float32) / (size - 1)).numpy()
    a = alpha.numpy()
    mass = a.sum((1, 2))
    cx = (a.sum(1) * grid).sum(1) / mass
    cy = (a.sum(2) * grid).sum(1) / mass
    side = targets[:, 2].numpy() / TRIAL.HAND_FILL  # the pasted crop's side; the hand fills most of it
    centre = targets[:, :2].numpy()
    whole = ((centre - side[:, None] / 2 > 0) & (centre + side[:, None] / 2 < 1)).all(1)
    assert whole.sum() >= 16  # crops inside the frame (the others are cut by its edge)
    # the faded crop is symmetric, so its centre of mass is the target centre (within a pixel)
    assert np.abs(cx - centre[:, 0])[whole].max() < 1.0 / size
    assert np.abs(cy - centre[:, 1])[whole].max() < 1.0 / size
    # and it spans the crop's side
    extent = (a > 0).any(1).sum(1) / size
    assert np.abs(extent - side)[whole].max() < 2.5 / size
    # both sides of the frame occur, so a mirror that moved the image but not the target would show
    assert 0 < (centre[whole, 0] < 0.5).sum() < whole.sum()


def test_iou_of_known_boxes() -> None:
    a = np.array([[0.5, 0.5, 0.4, 0.4], [0.5, 0.5, 0.4, 0.4], [0.2, 0.2, 0.2, 0.2]])
    b = np.array([[0.5, 0.5, 0.4, 0.4], [0.6, 0.5, 0.4, 0.4], [0.8, 0.8, 0.2, 0.2]])
    np.testing.assert_allclose(TRIAL.iou(a, b), [1.0, 0.12 / 0.2, 0.0], atol=1e-9)


def test_a_short_fit_lowers_the_box_loss() -> None:
    hands = torch.rand(256, 1, 28, 28)
    _, losses = TRIAL.fit(hands, steps=40, batch=32)
    assert np.mean(losses[-10:]) < 0.6 * np.mean(losses[:5])
