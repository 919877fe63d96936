from pathlib import Path

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from fingerspell.models.cnn import ClassicCNN, SmallCNN
from fingerspell.models.module import FingerspellModule
from fingerspell.models.resnet import SmallResNet

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


def test_checkpoint_rebuilds_with_no_other_arguments(tmp_path: Path) -> None:
    torch.manual_seed(0)
    data = TensorDataset(torch.rand(16, 1, 28, 28), torch.randint(0, 24, (16,)))
    m = module(optimizer=lambda params: torch.optim.SGD(params, lr=0.1))
    trainer = L.Trainer(
        max_steps=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    trainer.fit(m, DataLoader(data, batch_size=8))
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
