"""A small residual network: the modern option among the nets."""

from torch import Tensor, nn


class BasicBlock(nn.Module):
    """Two 3x3 conv + batch norm layers with an identity (or 1x1 projection) shortcut."""

    def __init__(self, in_chans: int, out_chans: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_chans, out_chans, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_chans)
        self.conv2 = nn.Conv2d(out_chans, out_chans, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_chans)
        self.act = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_chans != out_chans:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_chans, out_chans, 1, stride=stride, bias=False), nn.BatchNorm2d(out_chans)
            )

    def forward(self, x: Tensor) -> Tensor:
        out = self.act(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.act(out + self.shortcut(x))


class SmallResNet(nn.Module):
    """ResNet-style net for 28x28 input: stem, one stage per width, average pool, linear head.

    Every stage after the first halves the side (28 -> 14 -> 7 for three widths).

    Args:
        in_chans: image channels (1, grey).
        num_classes: output classes.
        widths: channels per stage, e.g. [16, 32, 64] (28 -> 14 -> 7).
        blocks_per_stage: residual blocks in each stage.
        drop_rate: dropout before the output layer.
    """

    def __init__(
        self, in_chans: int, num_classes: int, widths: list[int], blocks_per_stage: int, drop_rate: float
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_chans, widths[0], 3, padding=1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        )
        stages: list[nn.Module] = []
        chans = widths[0]
        for i, width in enumerate(widths):
            for j in range(blocks_per_stage):
                stride = 2 if i > 0 and j == 0 else 1
                stages.append(BasicBlock(chans, width, stride))
                chans = width
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(drop_rate), nn.Linear(chans, num_classes)
        )

    def forward(self, x: Tensor) -> Tensor:
        """(N, C, H, W) normalised images -> (N, num_classes) logits."""
        return self.head(self.stages(self.stem(x)))
