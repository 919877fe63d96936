"""Trial: a small hand localiser trained on Sign-MNIST hands pasted into procedural scenes.

The hand finder (`--crop auto`) holds most of the full-frame gap: the model reads annotated hand
boxes far better than the finder's. Issue #7 suggests a learned localiser trained on composites,
with no photo ever used for training. This script builds such composites in tensors (a Sign-MNIST
training image faded in at a random size and place over a procedural scene, often with an arm
below it, then the `augment=real` photometric changes, random convolutions and a mirror), fits a
4-block CNN that regresses the hand's centre and size, and measures it on the real-hands dev set:
box IoU against the annotations (next to the hand finder's, at the same resolution) and, for each
--model, dev top-1 through the product's `--tta` views around its box.

    python benchmarks/localiser_trial.py --steps 1500 --model /path/a.onnx /path/b.onnx

Writes benchmarks/results/localiser_trial.json. Not part of the product or of `make bench`.
"""

import argparse
import json
import time
from itertools import pairwise
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import OmegaConf
from PIL import Image
from torch import nn

from fingerspell.atomic import temp_beside
from fingerspell.configs import CONFIG_DIR
from fingerspell.data.augment_real import RealAugment
from fingerspell.data.labels import LETTERS
from fingerspell.data.outliers import scenes
from fingerspell.inference.handfinder import PRIOR_BOX, SHRINK, find_hand_box
from fingerspell.inference.images import VIEW_MARGINS, ImageError, read_image_file, to_model_views
from fingerspell.inference.predictor import ModelError, OnnxPredictor
from fingerspell.photos.dataset import PhotoSetError, load_photo_set

ROOT = Path(__file__).resolve().parents[1]
SIZE = 48  # the localiser's input side
HAND_FILL = 0.85  # how much of a Sign-MNIST crop's side the hand spans (the target box)
FADE = 0.12  # width of the faded border of the pasted crop, as a fraction of its side

# the composite does the geometry, the scene and the mirror; `augment=real` the rest, on every image
PHOTOMETRIC_OVERRIDES = {
    "p": 1.0, "rotation": 0.0, "scale": [1.0, 1.0], "translate": 0.0, "hflip": 0.0,
    "background": 0.0, "background_blend": 0.0, "erase": 0.0, "randconv": 0.5, "randconv_layers": 4,
}  # fmt: skip
PHOTOMETRIC: RealAugment = instantiate(
    OmegaConf.merge(OmegaConf.load(Path(CONFIG_DIR) / "augment" / "real.yaml"), PHOTOMETRIC_OVERRIDES)
)


def composites(
    hands: torch.Tensor, generator: torch.Generator, size: int = SIZE
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Scenes with one hand each: (images (n,1,size,size), targets (n,3) cx/cy/side, hand alpha (n,size,size)).

    The crop's border is faded so there is no patch edge to find; an arm (the crop's bottom row
    stretched down) is drawn below 70% of the hands, as in photos of one's own hand.
    """
    n = hands.shape[0]
    canvas = scenes(torch.zeros(n, 1, size, size), generator=generator)
    side = (torch.rand(n, generator=generator) * 0.5 + 0.35) * size  # 0.35-0.85 of the frame
    cx = torch.rand(n, generator=generator) * 0.5 + 0.25
    cy = torch.rand(n, generator=generator) * 0.5 + 0.25
    ys, xs = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    u = (xs[None] - cx[:, None, None]) * size / side[:, None, None] + 0.5  # crop coordinates, 0-1 inside
    v = (ys[None] - cy[:, None, None]) * size / side[:, None, None] + 0.5
    inside = (u > 0) & (u < 1) & (v > 0) & (v < 1)
    arm_width = torch.rand(n, generator=generator)[:, None, None] * 0.3 + 0.35
    with_arm = (torch.rand(n, generator=generator) < 0.7)[:, None, None]
    arm = (v >= 1) & ((u - 0.5).abs() < arm_width / 2) & with_arm
    grid = torch.stack([u * 2 - 1, v.clamp(max=0.999) * 2 - 1], -1)
    pasted = F.grid_sample(hands, grid, align_corners=False, padding_mode="border")[:, 0]
    edge = torch.minimum(torch.minimum(u, 1 - u), torch.minimum(v, 1 - v))
    hand_alpha = torch.where(inside, (edge / FADE).clamp(0, 1), torch.zeros_like(u))
    alpha = torch.where(arm, torch.full_like(u, 0.9), hand_alpha)
    out = alpha[:, None] * pasted[:, None] + (1 - alpha[:, None]) * canvas
    out = PHOTOMETRIC(out, generator=generator)
    flip = torch.rand(n, generator=generator) < 0.5  # left and right hands; the target follows
    out = torch.where(flip[:, None, None, None], out.flip(-1), out)
    hand_alpha = torch.where(flip[:, None, None], hand_alpha.flip(-1), hand_alpha)
    cx = torch.where(flip, 1 - cx, cx)
    return out, torch.stack([cx, cy, side / size * HAND_FILL], 1), hand_alpha


class Localiser(nn.Module):
    """Four conv blocks and a small head: the hand's (cx, cy, side), each 0-1 of the frame."""

    def __init__(self) -> None:
        super().__init__()
        widths = [1, 16, 32, 64, 64]
        blocks: list[nn.Module] = []
        for a, b in pairwise(widths):
            blocks += [nn.Conv2d(a, b, 3, padding=1), nn.BatchNorm2d(b), nn.ReLU(), nn.MaxPool2d(2)]
        self.features = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(64 * 3 * 3, 64), nn.ReLU(), nn.Linear(64, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.head(self.features(x)))


def fit(hands: torch.Tensor, steps: int, seed: int = 0, batch: int = 128) -> tuple[Localiser, list[float]]:
    """Smooth-L1 regression of (cx, cy, side) on fresh composites every step (one-cycle AdamW)."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    net = Localiser()
    optimiser = torch.optim.AdamW(net.parameters(), 2e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, 3e-3, total_steps=steps)
    losses = []
    for _ in range(steps):
        index = torch.randint(0, len(hands), (batch,), generator=generator)
        images, targets, _ = composites(hands[index], generator)
        loss = F.smooth_l1_loss(net(images), targets, beta=0.05)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        losses.append(float(loss.detach()))
    return net.eval(), losses


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise IoU of normalised (cx, cy, w, h) boxes."""
    lo = np.maximum(a[:, :2] - a[:, 2:] / 2, b[:, :2] - b[:, 2:] / 2)
    hi = np.minimum(a[:, :2] + a[:, 2:] / 2, b[:, :2] + b[:, 2:] / 2)
    inter = np.clip(hi - lo, 0, None).prod(1)
    return inter / (a[:, 2:].prod(1) + b[:, 2:].prod(1) - inter)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dev-set", type=Path, default=ROOT.parent / "shared" / "data" / "real-hands")
    parser.add_argument(
        "--model", type=Path, nargs="*", default=[], help="ONNX models to read the dev set with"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/localiser_trial.json")
    args = parser.parse_args()
    if args.steps < 1:
        parser.error(f"--steps must be at least 1, got {args.steps}")
    if args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    train_npz = ROOT / "data/processed/train.npz"
    if not train_npz.is_file():
        parser.error(f"{train_npz}: not found; run `dvc repro preprocess` first")
    try:
        hands = torch.from_numpy(np.load(train_npz)["images"].astype(np.float32) / 255).view(-1, 1, 28, 28)
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        parser.error(f"{train_npz}: not a preprocessed image array ({err}); run `dvc repro preprocess` again")
    # everything the measurement needs is read before the fit, so a bad path fails in seconds
    try:
        photos = load_photo_set(args.dev_set / "labels.csv", LETTERS, group_column="photo_id")
        images = [read_image_file(photo.path, colour=True) for photo in photos]
        predictors = {str(model): OnnxPredictor(model) for model in args.model}
    except (PhotoSetError, ImageError, ModelError) as err:
        parser.error(str(err))
    if any(photo.box is None for photo in photos):
        parser.error(f"{args.dev_set / 'labels.csv'}: needs hand-box columns (box_cx, box_cy, box_w, box_h)")
    truth = np.array([photo.box for photo in photos])

    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    net, losses = fit(hands, args.steps, args.seed)
    fit_s = time.perf_counter() - start

    grey = np.stack(
        [np.asarray(i.convert("L").resize((SIZE, SIZE), Image.Resampling.BILINEAR)) for i in images]
    )
    with torch.no_grad():
        raw = net(torch.from_numpy(grey.astype(np.float32) / 255)[:, None]).numpy()
    learned = np.stack([raw[:, 0], raw[:, 1], raw[:, 2], raw[:, 2]], 1)
    prior = np.array(PRIOR_BOX)
    found = np.array([find_hand_box(i) or (0.5, 0.5, 1.0, 1.0) for i in images])  # None: the whole frame
    boxes = {
        "localiser": learned,
        "localiser, pulled half way to the central 60%": SHRINK * learned + (1 - SHRINK) * prior,
        "mean of localiser and finder": (learned + found) / 2,
        "finder (--crop auto)": found,
        "fixed central 60%": np.tile(prior, (len(photos), 1)),
    }
    groups = np.array([photo.group for photo in photos])
    design = np.isin(groups, np.unique(groups)[::3])  # the finder was designed on these
    result: dict = {
        "steps": args.steps,
        "seed": args.seed,
        "fit_s": round(fit_s, 1),
        "final_loss": float(np.mean(losses[-50:])),
        "iou": {
            name: {
                "design_third": float(iou(b, truth)[design].mean()),
                "other_two_thirds": float(iou(b, truth)[~design].mean()),
            }
            for name, b in boxes.items()
        },
        "correlation": {
            key: float(np.corrcoef(learned[:, i], truth[:, i] if i < 2 else truth[:, 2:].max(1))[0, 1])
            for i, key in enumerate(("cx", "cy", "size"))
        },
        "models": {},
    }
    views = {
        name: np.stack(
            # the finder's row is the product's own `--crop auto --tta` path (its fallback
            # included), read in luma and undimmed whatever each --model's input spec says
            [to_model_views(i, crop="auto") for i in images]
            if name == "finder (--crop auto)"
            else [to_model_views(i, hand=tuple(box)) for i, box in zip(images, b, strict=True)]
        )
        for name, b in boxes.items()
    }
    plain = len(VIEW_MARGINS) - 1  # the view at the usual 15% margin, unmirrored
    for model, predictor in predictors.items():
        labels = np.array([predictor.letters.index(photo.letter) for photo in photos])
        readings = {}
        for name, v in views.items():
            probs = predictor.predict_proba(v.reshape(-1, 28, 28)).reshape(len(photos), v.shape[1], -1)
            readings[name] = {
                "top1": float((probs[:, plain].argmax(1) == labels).mean()),
                "top1_tta": float((probs.mean(1).argmax(1) == labels).mean()),
            }
        result["models"][model] = readings
    tmp = temp_beside(args.out)
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(args.out)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
