from pathlib import Path

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from fingerspell.data.outliers import scenes
from fingerspell.models.cnn import ClassicCNN, SmallCNN
from fingerspell.models.module import FingerspellModule
from fingerspell.models.resnet import SmallResNet
from tests.fixtures.train import quiet_trainer

LETTERS = list("ABCDEFGHIKLMNOPQRSTUVWXY")
NET = {
    "_target_": "fingerspell.models.cnn.SmallCNN",
    "in_chans": 1,
    "num_classes": 24,
    "widths": [4, 8, 8],
    "drop_rate": 0.0,
    "image_size": 28,
}


@pytest.mark.parametrize(
    "net",
    [
        ClassicCNN(1, 24, 0.2, 0.3, 28),
        SmallCNN(1, 24, [16, 32, 64], 0.2, 28),
        SmallResNet(1, 24, [16, 32, 64], 1, 0.1),
    ],
    ids=["cnn", "cnn_small", "resnet"],
)
def test_nets_map_images_to_24_logits(net: torch.nn.Module) -> None:
    out = net.eval()(torch.randn(5, 1, 28, 28))
    assert out.shape == (5, 24)
    assert torch.isfinite(out).all()


def test_classic_cnn_is_the_tutorial_network() -> None:
    net = ClassicCNN(1, 24, 0.2, 0.3, 28)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [75, 50, 25]
    assert all(c.kernel_size == (3, 3) for c in convs)
    assert sum(p.numel() for p in net.parameters()) == 263_749  # the "264k parameters" of the original


def module(**kw: object) -> FingerspellModule:
    args = {
        "net": NET,
        "mean": 0.5,
        "std": 0.25,
        "letters": LETTERS,
        "num_classes": 24,
        "label_smoothing": 0.1,
    }
    return FingerspellModule(**{**args, **kw})  # type: ignore[arg-type]


def test_forward_normalises_inside_the_module() -> None:
    m = module().eval()
    x = torch.rand(3, 1, 28, 28)
    assert torch.allclose(m(x), m.net((x - 0.5) / 0.25))
    assert torch.allclose(m.inference_model()(x), m(x))


def test_letters_must_match_the_class_count() -> None:
    with pytest.raises(ValueError, match="letters"):
        module(letters=LETTERS[:5])


def _fit(m: FingerspellModule, images: int, batch_size: int, steps: int) -> L.Trainer:
    """A few CPU steps on random images (seeded), with nothing written to disk."""
    torch.manual_seed(0)
    data = TensorDataset(torch.rand(images, 1, 28, 28), torch.randint(0, 24, (images,)))
    trainer = quiet_trainer(max_steps=steps)
    trainer.fit(m, DataLoader(data, batch_size=batch_size))
    return trainer


def test_checkpoint_rebuilds_with_no_other_arguments(tmp_path: Path) -> None:
    m = module(optimizer=lambda params: torch.optim.SGD(params, lr=0.1))
    trainer = _fit(m, images=16, batch_size=8, steps=2)
    path = tmp_path / "m.ckpt"
    trainer.save_checkpoint(path)
    loaded = FingerspellModule.load_from_checkpoint(path, map_location="cpu").eval()
    x = torch.rand(4, 1, 28, 28)
    assert torch.allclose(loaded(x), m.eval()(x))
    assert loaded.hparams["letters"] == LETTERS
    assert loaded.hparams["mean"] == 0.5
    assert loaded.hparams["std"] == 0.25
    assert loaded.hparams["num_classes"] == 24
    assert len(loaded.history) == 1 or loaded.history == m.history


def test_outlier_exposure_makes_hand_free_images_uncertain() -> None:
    """Same data, seed and steps: only the uniform-target loss on hand-free images differs."""
    drawn = scenes(torch.zeros(64, 1, 28, 28), torch.Generator().manual_seed(99))
    confidence = {}
    for weight in (0.0, 1.0):
        torch.manual_seed(0)
        m = module(outlier_exposure=weight, optimizer=lambda params: torch.optim.Adam(params, lr=3e-3))
        _fit(m, images=64, batch_size=16, steps=40)
        with torch.no_grad():
            confidence[weight] = m.eval()(drawn).softmax(1).max(1).values.mean().item()
    assert confidence[1.0] < 0.6 * confidence[0.0]  # measured 0.066 vs 0.146
    assert confidence[1.0] < 0.1  # near the uniform 1/24 = 0.042


def test_outlier_exposure_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match=r"outlier_exposure=-0\.5 must be >= 0"):
        module(outlier_exposure=-0.5)


def test_image_norm_makes_the_net_blind_to_brightness_and_contrast() -> None:
    torch.manual_seed(0)
    x = torch.rand(8, 1, 28, 28)
    darker = x * 0.6 - 0.3  # a darker, flatter exposure of the same images
    normed = ClassicCNN(1, 24, 0.2, 0.3, 28, image_norm=True).eval()
    torch.testing.assert_close(normed(darker), normed(x), atol=2e-3, rtol=1e-3)
    assert normed(torch.zeros(2, 1, 28, 28)).isfinite().all()  # a flat image stays finite
    plain = ClassicCNN(1, 24, 0.2, 0.3, 28).eval()
    plain.load_state_dict(normed.state_dict())  # no weights of its own: the same state
    moved = (plain(darker) - plain(x)).abs().max()
    assert moved > 20 * (normed(darker) - normed(x)).abs().max()


def test_nets_pickled_before_image_norm_still_run() -> None:
    net = ClassicCNN(1, 24, 0.2, 0.3, 28).eval()
    state = net.__getstate__()
    del state["image_norm"]  # as MLflow's pickle of an older net has it
    old = ClassicCNN.__new__(ClassicCNN)
    old.__setstate__(state)
    x = torch.rand(2, 1, 28, 28)
    torch.testing.assert_close(old(x), net(x))
