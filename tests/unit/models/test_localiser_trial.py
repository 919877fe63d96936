"""The localiser trial's composites put the hand where their targets say, mirrors included.

A target that drifted from the pasted hand (a flip applied to the image but not the box, a
scale off by the crop's margin) would train a localiser to point beside hands, and the trial
would then measure the bug instead of the idea. Bad paths stop the trial with one line before
its minutes-long fit.
"""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.fixtures.scripts import load_benchmark

TRIAL = load_benchmark("localiser_trial")


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


def _run(monkeypatch: pytest.MonkeyPatch, root: Path, *args: str) -> None:
    """Run the trial's main with `root` as the repo; it must stop with exit code 2."""
    monkeypatch.setattr(TRIAL, "ROOT", root)
    monkeypatch.setattr(sys, "argv", ["localiser_trial.py", *args])
    with pytest.raises(SystemExit) as exit_info:
        TRIAL.main()
    assert exit_info.value.code == 2


def test_bad_inputs_stop_before_the_fit_with_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def error_line(*args: str) -> str:
        _run(monkeypatch, tmp_path, *args)
        lines = capsys.readouterr().err.strip().splitlines()
        assert lines[-1].startswith("localiser_trial.py: error: ")
        return lines[-1]

    assert "train.npz: not found; run `dvc repro preprocess`" in error_line()
    assert "--steps must be at least 1" in error_line("--steps", "0")
    assert "--threads must be at least 1" in error_line("--threads", "0")
    (tmp_path / "data/processed").mkdir(parents=True)
    train_npz = tmp_path / "data/processed/train.npz"
    train_npz.write_bytes(b"not an npz")
    assert "train.npz: not a preprocessed image array" in error_line()
    np.savez(train_npz, images=np.zeros((4, 1, 28, 28), np.uint8))
    assert "nowhere/labels.csv: no such folder or CSV file" in error_line(
        "--dev-set", str(tmp_path / "nowhere")
    )
    dev = tmp_path / "dev"
    (dev / "A").mkdir(parents=True)
    Image.new("RGB", (32, 32), (200, 150, 120)).save(dev / "A/a.png")
    (dev / "labels.csv").write_text("path,letter,photo_id\nA/a.png,A,a1\n")
    assert "needs hand-box columns" in error_line("--dev-set", str(dev))
    (dev / "labels.csv").write_text(
        "path,letter,photo_id,box_cx,box_cy,box_w,box_h\nA/a.png,A,a1,.5,.5,.4,.4\n"
    )
    assert "missing.onnx" in error_line("--dev-set", str(dev), "--model", str(tmp_path / "missing.onnx"))
