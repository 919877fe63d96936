"""Convolutional nets for 28x28 grey hand images: the classic Sign-MNIST CNN and a faster small one."""

import itertools
from typing import Any

from torch import Tensor, nn

from fingerspell.models.mixstyle import MixStyle


def conv_bn(in_chans: int, out_chans: int, drop_rate: float = 0.0) -> nn.Sequential:
    """3x3 conv ("same" padding), optional dropout, batch norm, ReLU and a 2x2 max-pool.

    `ceil_mode` keeps Keras' "same" pooling: 28 -> 14 -> 7 -> 4.
    """
    layers: list[nn.Module] = [nn.Conv2d(in_chans, out_chans, 3, padding=1, bias=True)]
    if drop_rate > 0:
        layers.append(nn.Dropout(drop_rate))
    layers += [nn.BatchNorm2d(out_chans), nn.ReLU(inplace=True), nn.MaxPool2d(2, ceil_mode=True)]
    return nn.Sequential(*layers)


def standardise(x: Tensor, eps: float = 1e-3) -> Tensor:
    """Each image to zero mean and unit spread (a flat image stays flat: eps keeps it finite)."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    std = x.std(dim=(1, 2, 3), keepdim=True, unbiased=False)
    return (x - mean) / (std + eps)


class ClassicCNN(nn.Module):
    """The widely copied Kaggle Sign-MNIST network (264k parameters, ~7.9 M multiply-adds per image).

    conv 75 -> 50 (+dropout) -> 25 filters of 3x3, each with batch norm, ReLU and 2x2 max-pooling,
    then dense 512 with dropout and a 24-way output (logits; softmax lives in the loss and in
    the exported graph).

    Args:
        in_chans: image channels (1, grey).
        num_classes: output classes.
        conv_drop_rate: dropout after the second conv (0.2 in the original).
        drop_rate: dropout before the output layer (0.3 in the original).
        image_size: side of the square input, to size the dense layer.
        mixstyle: probability of MixStyle after the first two conv blocks in training (0 = off);
            it has no weights, so checkpoints and exported graphs are the same either way.
        image_norm: standardise each image to zero mean and unit spread before the first conv,
            so the net cannot see overall brightness or contrast (phone photos are darker than
            Sign-MNIST crops: mean grey 121 vs 159). No weights; part of the exported graph.
    """

    def __init__(
        self,
        in_chans: int,
        num_classes: int,
        conv_drop_rate: float,
        drop_rate: float,
        image_size: int,
        mixstyle: float = 0.0,
        image_norm: bool = False,
    ) -> None:
        super().__init__()
        self.image_norm = image_norm
        self.mixstyle = MixStyle(mixstyle) if mixstyle else None  # MixStyle refuses p outside [0, 1]
        self.features = nn.Sequential(
            conv_bn(in_chans, 75),
            conv_bn(75, 50, conv_drop_rate),
            conv_bn(50, 25),
        )
        side = image_size
        for _ in range(3):
            side = (side + 1) // 2  # 28 -> 14 -> 7 -> 4
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(25 * side * side, 512),
            nn.ReLU(inplace=True),
            nn.Dropout(drop_rate),
            nn.Linear(512, num_classes),
        )

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Read nets pickled before the `mixstyle` option existed as nets without it.

        MLflow's pytorch flavour pickles the whole module, so registered models from before the
        option lack the attribute and would otherwise fail in `forward`.
        """
        if "mixstyle" not in state and "mixstyle" not in state.get("_modules", {}):
            state["mixstyle"] = None
        state.setdefault("image_norm", False)
        super().__setstate__(state)

    def forward(self, x: Tensor) -> Tensor:
        """(N, C, H, W) normalised images -> (N, num_classes) logits."""
        if self.image_norm:
            x = standardise(x)
        for index, block in enumerate(self.features):
            x = block(x)
            if self.mixstyle is not None and index < 2:  # early layers carry style, the last the letter
                x = self.mixstyle(x)
        return self.head(x)


class SmallCNN(nn.Module):
    """A faster net: three conv blocks of `widths` channels and one linear layer (~48k parameters).

    About a quarter of the classic network's multiply-adds, so an epoch on two CPU cores takes
    roughly a fifth of the time, at the same accuracy on Sign-MNIST's test split.

    Args:
        in_chans: image channels (1, grey).
        num_classes: output classes.
        widths: channels of the three conv blocks.
        drop_rate: dropout before the output layer.
        image_size: side of the square input.
    """

    def __init__(
        self, in_chans: int, num_classes: int, widths: list[int], drop_rate: float, image_size: int
    ) -> None:
        super().__init__()
        chans = [in_chans, *widths]
        self.features = nn.Sequential(*(conv_bn(a, b) for a, b in itertools.pairwise(chans)))
        side = image_size
        for _ in widths:
            side = (side + 1) // 2
        self.head = nn.Sequential(
            nn.Flatten(), nn.Dropout(drop_rate), nn.Linear(chans[-1] * side * side, num_classes)
        )

    def forward(self, x: Tensor) -> Tensor:
        """(N, C, H, W) normalised images -> (N, num_classes) logits."""
        return self.head(self.features(x))
