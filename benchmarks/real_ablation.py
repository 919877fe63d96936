"""Ablation of the `augment=real` recipe: each ingredient off in turn, several seeds, a bigger net.

Every run trains with the project's own conf tree (Hydra compose API, the same overrides a user
would type), keeps the best checkpoint on val/loss, and scores it on the official test split and
on a prepared dev array of real photos in both readings (full frame, hand box). Runs are
separate processes, so several share one GPU (or the CPU cores) at once.

The dev array is made by `benchmarks/real_hands.py --dump-dev` from `../shared/data/real-hands`
with the product's own image path (luma grey, crop, Lanczos to 28x28: checkpoints have no
export, so no `grey_weights` or `dim_background` yet); it is read, never trained on.

    python benchmarks/real_hands.py --dump-dev reports/real_hands/dev_inputs.npz
    python benchmarks/real_ablation.py --dev reports/real_hands/dev_inputs.npz --jobs 2 \
        --runs real-half half-no_background --seeds 0 1 2 --epochs 12
    python benchmarks/real_ablation.py --table    # the README table from the results JSON
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fingerspell.atomic import temp_beside
from fingerspell.photos.metrics import grouped_bootstrap

if TYPE_CHECKING:  # torch and Lightning load inside the runs, so `--table` starts without them
    import torch

    from fingerspell.data.datamodule import SignMNISTDataModule
    from fingerspell.models.module import FingerspellModule

ROOT = Path(__file__).resolve().parents[1]

HALF = ["augment=real", "augment.p=0.5"]
PROGRESSIVE = [*HALF, "augment.randconv=1.0", "augment.randconv_layers=4"]
# validate, checkpoint and ship an exponential moving average of the weights (Lightning callback)
EMA = "+callbacks.ema={_target_:lightning.pytorch.callbacks.EMAWeightAveraging,decay:0.998}"

# name -> Hydra overrides; every `real-no_*` row is `real` with one ingredient off.
RECIPES: dict[str, list[str]] = {
    "classic": ["augment=classic"],
    "real": ["augment=real"],
    "real-half": ["augment=real", "augment.p=0.5"],
    "half-randconv": [*HALF, "augment.randconv=0.5"],
    "half-randconv_all": [*HALF, "augment.randconv=1.0"],
    "half-prorandconv": PROGRESSIVE,  # = experiment=real_hands
    "half-prorandconv8": [*HALF, "augment.randconv=1.0", "augment.randconv_layers=8"],
    "half-prorandconv-no_background": [*PROGRESSIVE, "augment.background=0", "augment.background_blend=0"],
    "half-prorandconv-smooth0.15": [*PROGRESSIVE, "module.label_smoothing=0.15"],
    "half-prorandconv-wide_zoom": [*PROGRESSIVE, "augment.scale=[0.45,1.1]"],
    "half-prorandconv-resnet": [*PROGRESSIVE, "model=resnet"],
    "half-prorandconv-oe": [*PROGRESSIVE, "module.outlier_exposure=0.5"],
    "half-prorandconv-viewpoint": [*PROGRESSIVE, "augment.shear=20", "augment.aspect=0.3"],
    "half-prorandconv-rotate30": [*PROGRESSIVE, "augment.rotation=30"],
    "half-prorandconv-shading": [*PROGRESSIVE, "augment.shading=1.0"],
    "half-prorandconv-mirror_all": [*PROGRESSIVE, "augment.hflip_all=true"],
    "half-prorandconv-elastic": [*PROGRESSIVE, "augment.elastic=0.06"],
    "half-prorandconv-ema": [*PROGRESSIVE, EMA],
    "half-prorandconv-small": [*PROGRESSIVE, "model=cnn_small"],
    "half-prorandconv-small_wide": [*PROGRESSIVE, "model=cnn_small", "model.widths=[32,64,128]"],
    "half-prorandconv-sgd": [*PROGRESSIVE, "optimizer=sgd"],
    "half-prorandconv-mixstyle": [*PROGRESSIVE, "+model.mixstyle=0.5"],
    "half-prorandconv-ampmix": [*PROGRESSIVE, "augment.ampmix=1.0"],
    "half-prorandconv-image_norm": [*PROGRESSIVE, "+model.image_norm=true"],
    "half-prorandconv-distil": PROGRESSIVE,  # + DISTILLATION below
    "prorandconv-p0.7": [*PROGRESSIVE, "augment.p=0.7"],  # the later augment.p wins
    "half-prorandconv-jsd": PROGRESSIVE,  # + CONSISTENCY below
    "half-prorandconv-jsd1": PROGRESSIVE,
    "half-prorandconv-cutmix": PROGRESSIVE,  # + MIXING below
    "half-prorandconv-mixup": PROGRESSIVE,
    "half-prorandconv-sam": PROGRESSIVE,  # + SHARPNESS below
    "real-no_background": ["augment=real", "augment.background=0", "augment.background_blend=0"],
    "real-no_photometric": ["augment=real", "augment.gamma=0", "augment.brightness=0", "augment.contrast=0"],
    "real-no_degradation": ["augment=real", "augment.blur=0", "augment.noise=0", "augment.compress=0"],
    "real-no_erase": ["augment=real", "augment.erase=0"],
    "real-no_zoom_out": ["augment=real", "augment.scale=[0.9,1.1]", "augment.translate=0.1"],
    "real-no_flip": ["augment=real", "augment.hflip=0"],
    "real-resnet": ["augment=real", "model=resnet", "model.widths=[32,64,128]", "model.blocks_per_stage=2"],
}
# recipes trained on two augmented views of each batch, with this weight on the Jensen-Shannon
# divergence between their predictions (a consistency loss, as in AugMix and Random Convolutions)
CONSISTENCY = {"half-prorandconv-jsd": 10.0, "half-prorandconv-jsd1": 1.0}
# recipes whose augmented batches are then mixed by torchvision's batch transform (kind, alpha),
# trained on the mixed soft labels: CutMix pastes a box of another image, MixUp blends two images
MIXING = {"half-prorandconv-cutmix": ("CutMix", 1.0), "half-prorandconv-mixup": ("MixUp", 0.2)}
# recipes trained with sharpness-aware minimisation (Foret et al. 2021) at this radius rho: each
# step takes the gradient at the worst nearby weights, which seeks flat minima (a strong
# domain-generalisation baseline in DomainBed-style studies)
SHARPNESS = {"half-prorandconv-sam": 0.05}
# recipe -> (weight of the teachers' soft targets, temperature); the teachers' checkpoints come
# from --teachers (e.g. the three `half-prorandconv` seeds at 16 epochs, saved by Lightning)
DISTILLATION = {"half-prorandconv-distil": (0.7, 2.0)}
# the same ingredient switches on the p=0.5 recipe (`experiment=real_hands`)
RECIPES |= {
    name.replace("real-", "half-"): [*overrides, "augment.p=0.5"]
    for name, overrides in list(RECIPES.items())
    if name.startswith("real-no_")
}


def jensen_shannon(first: "torch.Tensor", second: "torch.Tensor") -> "torch.Tensor":
    """Mean Jensen-Shannon divergence between the softmax of two logit batches: 0 when they agree, at most ln 2."""
    import torch.nn.functional as F

    p, q = first.softmax(1), second.softmax(1)
    log_mid = ((p + q) / 2).clamp_min(1e-7).log()
    return (F.kl_div(log_mid, p, reduction="batchmean") + F.kl_div(log_mid, q, reduction="batchmean")) / 2


def two_view_training(datamodule: "SignMNISTDataModule", module: "FingerspellModule", weight: float) -> None:
    """Turn a run into consistency training: each training batch is augmented twice (each view
    under `augment.p` on its own, so a clean and an augmented view of one image often meet),
    cross-entropy on the first view, plus `weight` x the Jensen-Shannon divergence of the two
    views' predictions. Trial code for the ablation only, hence the class swap in place."""
    import torch
    import torch.nn.functional as F

    from fingerspell.data.datamodule import SignMNISTDataModule
    from fingerspell.models.module import FingerspellModule

    class TwoViews(SignMNISTDataModule):
        def on_after_batch_transfer(self, batch, dataloader_idx):  # type: ignore[no-untyped-def]
            trainer = self.trainer
            if self.augment is None or trainer is None or not trainer.training:
                return super().on_after_batch_transfer(batch, dataloader_idx)
            images, labels = batch
            x = images.float().div_(255)
            views = [self.augment(x.clone(), generator=self._aug_gen) for _ in range(2)]
            return torch.cat(views), labels

    class Consistent(FingerspellModule):
        def training_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
            x, y = batch
            n = y.shape[0]
            logits = self(x)  # both views in one pass: batch norm sees both
            first, second = logits[:n], logits[n:]
            ce = F.cross_entropy(first, y, label_smoothing=self.label_smoothing)
            loss = ce + weight * jensen_shannon(first, second)
            self.train_loss(loss.detach())
            self.train_metrics.update(first.detach(), y)
            return loss

    datamodule.__class__ = TwoViews
    module.__class__ = Consistent


def mixed_training(module: "FingerspellModule", kind: str, alpha: float) -> None:
    """Turn a run into CutMix or MixUp training (`torchvision.transforms.v2`): each training batch,
    after the recipe's augmentation, is mixed with itself rolled by one image and trained on the mixed soft labels.
    Validation and test are untouched. Trial code for the ablation only, hence the class swap."""
    import torch.nn.functional as F
    from torchvision.transforms import v2

    from fingerspell.models.module import FingerspellModule

    mix = getattr(v2, kind)(alpha=alpha, num_classes=int(module.hparams["num_classes"]))

    class Mixed(FingerspellModule):
        def training_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
            x, y = batch
            mixed, soft = mix(x, y)
            logits = self(mixed)
            loss = F.cross_entropy(logits, soft, label_smoothing=self.label_smoothing)
            self.train_loss(loss.detach())
            self.train_metrics.update(logits.detach(), soft.argmax(1))
            return loss

    module.__class__ = Mixed


def distilled_training(
    module: "FingerspellModule", teachers: list[Path], weight: float, temperature: float
) -> None:
    """Turn a run into knowledge distillation (Hinton et al. 2015) from an ensemble: on each
    augmented training batch the teachers' softened predictions (softmax at `temperature`,
    averaged over the teachers) are a second target beside the labels, weighted `weight`, the
    KL term scaled by temperature squared. One student that reads photos like the ensemble
    would ship at a third of its cost. Trial code for the ablation only, hence the class swap."""
    import torch
    import torch.nn.functional as F

    from fingerspell.models.module import FingerspellModule

    if not teachers:
        raise SystemExit("real_ablation.py: distillation needs --teachers CKPT [CKPT ...]")
    nets = [FingerspellModule.load_from_checkpoint(path, map_location="cpu").eval() for path in teachers]
    for net in nets:
        net.requires_grad_(False)

    class Distilled(FingerspellModule):
        def training_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
            x, y = batch
            logits = self(x)
            with torch.no_grad():
                soft = torch.stack([(net.to(x.device)(x) / temperature).softmax(1) for net in nets]).mean(0)
            ce = F.cross_entropy(logits, y, label_smoothing=self.label_smoothing)
            kd = F.kl_div((logits / temperature).log_softmax(1), soft, reduction="batchmean")
            loss = (1 - weight) * ce + weight * temperature**2 * kd
            self.train_loss(loss.detach())
            self.train_metrics.update(logits.detach(), y)
            return loss

    module.__class__ = Distilled


def sharpness_aware_training(module: "FingerspellModule", rho: float) -> None:
    """Turn a run into SAM training: each optimizer step first computes the gradient at the
    weights, moves them `rho` along it (normalised over all parameters), takes the gradient
    there, moves back and lets the recipe's optimizer (AdamW) step with that second gradient.
    Batch norm's running statistics are updated by the first pass only. Both passes run
    `training_step`, so the logged train loss and accuracy average the two (val, test and dev
    scores are unaffected). Trial code for the ablation only, hence the class swap."""
    import torch
    from torch import nn

    from fingerspell.models.module import FingerspellModule

    class SharpnessAware(FingerspellModule):
        def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_closure=None):  # type: ignore[no-untyped-def]
            assert optimizer_closure is not None
            optimizer_closure()  # loss and gradient at w (Lightning's closure zeroes grads first)
            params = [p for p in self.parameters() if p.grad is not None]
            norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params]))
            steps = [p.grad * (rho / (norm + 1e-12)) for p in params]
            norms = [m for m in self.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
            momenta = [m.momentum for m in norms]
            with torch.no_grad():
                for p, e in zip(params, steps, strict=True):
                    p.add_(e)
            for m in norms:
                m.momentum = 0.0  # the second pass must not count twice in the running statistics
            optimizer_closure()  # gradient at w + e
            for m, momentum in zip(norms, momenta, strict=True):
                m.momentum = momentum
            with torch.no_grad():
                for p, e in zip(params, steps, strict=True):
                    p.sub_(e)
            optimizer.step()

    module.__class__ = SharpnessAware


def run_one(
    recipe: str,
    seed: int,
    epochs: int,
    dev: Path,
    out: Path,
    save: Path | None,
    teachers: list[Path] | None = None,
) -> None:
    """Train one recipe/seed and write its scores as JSON to `out`."""
    import lightning as L
    import torch
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate
    from lightning.pytorch.callbacks import ModelCheckpoint

    from fingerspell.configs import CONFIG_DIR
    from fingerspell.training.build import build_datamodule, build_module

    threads = max(1, int(os.environ.get("ABLATION_THREADS", "1")))
    torch.set_num_threads(threads)
    gpu = torch.cuda.is_available()
    # the table's hardware column: runs on other machines must not be averaged together
    plural = "s" if threads > 1 else ""
    where = torch.cuda.get_device_name() if gpu else f"{os.cpu_count()}-core CPU, {threads} thread{plural}"
    overrides = RECIPES[recipe] + [
        f"seed={seed}",
        f"trainer.max_epochs={epochs}",
        "logger=none",
        f"paths.processed_dir={ROOT / 'data/processed'}",
    ]
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    L.seed_everything(seed, workers=True, verbose=False)
    datamodule = build_datamodule(cfg)
    module = build_module(cfg, datamodule)
    if recipe in CONSISTENCY:
        two_view_training(datamodule, module, CONSISTENCY[recipe])
    if recipe in MIXING:
        mixed_training(module, *MIXING[recipe])
    if recipe in SHARPNESS:
        sharpness_aware_training(module, SHARPNESS[recipe])
    if recipe in DISTILLATION:
        distilled_training(module, teachers or [], *DISTILLATION[recipe])
    ckpt_dir = Path(out).with_suffix("")
    checkpoint = ModelCheckpoint(dirpath=ckpt_dir, filename="best", monitor="val/loss", mode="min")
    # weight averaging from the recipe's `callbacks` (checkpoints then hold the averaged weights)
    averaging = [
        instantiate(node)
        for node in (cfg.get("callbacks") or {}).values()
        if node is not None and "WeightAveraging" in str(node._target_)
    ]
    trainer = L.Trainer(
        accelerator="gpu" if gpu else "cpu",
        devices=1,
        max_epochs=epochs,
        precision="bf16-mixed" if gpu else "32-true",
        logger=False,
        callbacks=[checkpoint, *averaging],
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=str(ckpt_dir),
    )
    start = time.perf_counter()
    trainer.fit(module, datamodule=datamodule)
    fit_s = time.perf_counter() - start
    best = type(module).load_from_checkpoint(checkpoint.best_model_path, map_location="cpu")
    net = best.inference_model()

    def predict(images: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.asarray(images, np.float32)).view(-1, 1, 28, 28) / 255
        with torch.no_grad():
            return torch.cat([net(chunk).softmax(1) for chunk in x.split(2048)]).numpy()

    test = np.load(ROOT / "data/processed/test.npz")
    test_acc = float((predict(test["images"]).argmax(1) == test["labels"]).mean())
    arrays = np.load(dev)
    result = {
        "recipe": recipe,
        "overrides": RECIPES[recipe],
        "seed": seed,
        "epochs": epochs,
        "epochs_run": int(trainer.current_epoch),
        "fit_s": round(fit_s, 1),
        "device": "cuda" if gpu else "cpu",
        "where": where,
        "val_loss": float(checkpoint.best_model_score),
        "test_acc": test_acc,
    }
    for reading in ("full", "box"):
        probs = predict(arrays[reading])
        labels = arrays["labels"]
        top = np.argsort(-probs, 1)
        correct = top[:, 0] == labels
        result[f"dev_{reading}_top1"] = float(correct.mean())
        result[f"dev_{reading}_top1_ci"] = list(
            grouped_bootstrap(correct.astype(float), arrays["groups"], 2000)
        )
        result[f"dev_{reading}_top3"] = float((top[:, :3] == labels[:, None]).any(1).mean())
    if save is not None:
        save.mkdir(parents=True, exist_ok=True)
        torch.save(
            {"state_dict": best.state_dict(), "hyper_parameters": dict(best.hparams)},
            save / f"{recipe}_s{seed}.pt",
        )
    Path(out).write_text(json.dumps(result))


NAMES = {
    "classic": "classic",
    "real": "real, p=1 (every image)",
    "real-half": "real, p=0.5",
    "half-randconv": "p=0.5 + random convolutions (half the augmented images)",
    "half-randconv_all": "p=0.5 + random convolutions (every augmented image)",
    "half-prorandconv": "p=0.5 + progressive random convolutions (1-4 passes)",
    "half-prorandconv8": "p=0.5 + progressive random convolutions (1-8 passes)",
    "half-prorandconv-no_background": "p=0.5 + progressive random convolutions, no backgrounds",
    "half-prorandconv-smooth0.15": "p=0.5 + progressive random convolutions, label smoothing 0.15",
    "half-prorandconv-wide_zoom": "p=0.5 + progressive random convolutions, zoom-out to 0.45",
    "half-prorandconv-resnet": "p=0.5 + progressive random convolutions, small ResNet",
    "half-prorandconv-oe": "p=0.5 + progressive random convolutions + outlier exposure (0.5)",
    "half-prorandconv-viewpoint": "p=0.5 + progressive random convolutions + shear 20° and stretch 0.3",
    "half-prorandconv-rotate30": "p=0.5 + progressive random convolutions, rotation 30° (not 15°)",
    "half-prorandconv-shading": "p=0.5 + progressive random convolutions + uneven light (shading 1.0)",
    "half-prorandconv-mirror_all": "p=0.5 + progressive random convolutions, mirroring every image (not only augmented ones)",
    "half-prorandconv-elastic": "p=0.5 + progressive random convolutions + elastic warp (0.06 of the side)",
    "half-prorandconv-ema": "p=0.5 + progressive random convolutions, EMA of the weights (decay 0.998)",
    "half-prorandconv-small": "p=0.5 + progressive random convolutions, small CNN (16-32-64, 48k parameters)",
    "half-prorandconv-small_wide": "p=0.5 + progressive random convolutions, small CNN widened (32-64-128)",
    "half-prorandconv-sgd": "p=0.5 + progressive random convolutions, SGD + Nesterov (lr 0.05) instead of AdamW",
    "half-prorandconv-mixstyle": "p=0.5 + progressive random convolutions + MixStyle (p 0.5, after conv 1 and 2)",
    "half-prorandconv-ampmix": "p=0.5 + progressive random convolutions + Fourier amplitude mixing (every augmented image)",
    "half-prorandconv-image_norm": "p=0.5 + progressive random convolutions, each image standardised in the net",
    "half-prorandconv-distil": "p=0.5 + progressive random convolutions, distilled from the three 16-epoch seeds retrained on a new machine (weight 0.7, T 2)",
    "prorandconv-p0.7": "p=0.7 (not 0.5) + progressive random convolutions",
    "half-prorandconv-jsd": "p=0.5 + progressive random convolutions, two views + consistency loss (JSD, weight 10)",
    "half-prorandconv-jsd1": "p=0.5 + progressive random convolutions, two views + consistency loss (JSD, weight 1)",
    "half-prorandconv-cutmix": "p=0.5 + progressive random convolutions + CutMix (alpha 1)",
    "half-prorandconv-mixup": "p=0.5 + progressive random convolutions + MixUp (alpha 0.2)",
    "half-prorandconv-sam": "p=0.5 + progressive random convolutions, sharpness-aware minimisation (rho 0.05)",
    "real-no_background": "real, p=1, no backgrounds",
    "real-no_zoom_out": "real, p=1, classic geometry (no zoom-out)",
    "real-no_photometric": "real, p=1, no gamma/contrast/brightness",
    "real-no_degradation": "real, p=1, no blur/noise/compression",
    "real-no_flip": "real, p=1, no flip",
    "real-no_erase": "real, p=1, no erasing",
    "real-resnet": "real, p=1, ResNet (32-64-128, 2 blocks per stage)",
    "half-no_background": "p=0.5, no backgrounds",
    "half-no_zoom_out": "p=0.5, classic geometry (no zoom-out)",
    "half-no_photometric": "p=0.5, no gamma/contrast/brightness",
    "half-no_degradation": "p=0.5, no blur/noise/compression",
    "half-no_flip": "p=0.5, no flip",
    "half-no_erase": "p=0.5, no erasing",
}


def table(runs: list[dict]) -> str:
    """The README's ablation table: one row per run, then the mean of every recipe run with 3+ seeds."""
    groups: dict[tuple, list[dict]] = {}
    for run in runs:
        key = (run["recipe"], run["epochs"], run.get("where", run["device"]), run.get("label"))
        groups.setdefault(key, []).append(run)
    order = list(RECIPES)
    lines = [
        "| recipe | schedule | seed | official test | full frame | hand box |",
        "| --- | --- | --- | --- | --- | --- |",
    ]

    def cell(run: dict, reading: str) -> str:
        lo, hi = run[f"dev_{reading}_top1_ci"]
        return f"{run[f'dev_{reading}_top1']:.1%} [{100 * lo:.1f}, {100 * hi:.1f}]"

    for (recipe, epochs, where, label), rows in sorted(
        groups.items(), key=lambda g: (order.index(g[0][0]), g[0][1], g[0][3] is not None)
    ):
        name = label or NAMES.get(recipe, recipe)
        for run in sorted(rows, key=lambda r: r["seed"]):
            lines.append(
                f"| {name} | {epochs} epochs, {where} | {run['seed']} | {run['test_acc']:.2%} "
                f"| {cell(run, 'full')} | {cell(run, 'box')} |"
            )
        if len(rows) >= 3:
            mean = {
                k: sum(r[k] for r in rows) / len(rows) for k in ("test_acc", "dev_full_top1", "dev_box_top1")
            }
            lines.append(
                f"| **{name}, mean of {len(rows)} seeds** | {epochs} epochs | — | **{mean['test_acc']:.2%}** "
                f"| **{mean['dev_full_top1']:.1%}** | **{mean['dev_box_top1']:.1%}** |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dev", type=Path, help="npz of full/box/labels/groups (real_hands.py --dump-dev)")
    parser.add_argument("--runs", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--jobs", type=int, default=1, help="runs at once")
    parser.add_argument("--work", type=Path, default=ROOT / "logs/ablation")
    parser.add_argument("--save", type=Path, default=None, help="save each best model's weights here")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/real_ablation.json")
    parser.add_argument("--table", action="store_true", help="print the markdown table of --out and stop")
    parser.add_argument("--teachers", nargs="+", type=Path, default=[], help="checkpoints to distil from")
    parser.add_argument("--one", nargs=2, metavar=("RECIPE", "SEED"), help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.table:
        print(table(json.loads(args.out.read_text())["runs"]))
        return
    if args.dev is None or not args.dev.is_file():
        parser.error(f"--dev {args.dev}: no such file; make it with benchmarks/real_hands.py --dump-dev PATH")
    if args.one:
        run_one(args.one[0], int(args.one[1]), args.epochs, args.dev, args.result, args.save, args.teachers)
        return
    args.work.mkdir(parents=True, exist_ok=True)
    queue = [(r, s) for s in args.seeds for r in args.runs]
    running: list[tuple[subprocess.Popen, Path]] = []
    results = []
    start = time.perf_counter()
    while queue or running:
        while queue and len(running) < args.jobs:
            recipe, seed = queue.pop(0)
            result = args.work / f"{recipe}_s{seed}.json"
            cmd = [
                sys.executable,
                __file__,
                "--one",
                recipe,
                str(seed),
                "--epochs",
                str(args.epochs),
                "--dev",
                str(args.dev),
                "--result",
                str(result),
            ]
            if args.save:
                cmd += ["--save", str(args.save)]
            if args.teachers:
                cmd += ["--teachers", *map(str, args.teachers)]
            log = (args.work / f"{recipe}_s{seed}.log").open("w")
            running.append((subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT), result))
        time.sleep(1)
        for proc, result in list(running):
            if proc.poll() is not None:
                running.remove((proc, result))
                if proc.returncode == 0 and result.exists():
                    row = json.loads(result.read_text())
                    results.append(row)
                    print(json.dumps(row), flush=True)
                    write_results(
                        args.out, results, start
                    )  # after each run: a cut-off sweep keeps what it has
                else:
                    print(
                        f"FAILED {result.stem} (exit {proc.returncode}); see {result.with_suffix('.log')}",
                        flush=True,
                    )
    write_results(args.out, results, start)


def write_results(out: Path, results: list[dict], start: float) -> None:
    """Merge this sweep's runs into `out` (a rerun of the same recipe, seed, schedule and device replaces the old row)."""
    key = lambda r: (r["recipe"], r["seed"], r["epochs"], r.get("where", r["device"]), r.get("label"))  # noqa: E731
    doc = json.loads(out.read_text()) if out.is_file() else {}
    fresh = {key(r) for r in results}
    doc["runs"] = [r for r in doc.get("runs", []) if key(r) not in fresh] + results
    doc["last_sweep_wall_s"] = round(time.perf_counter() - start, 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_beside(out)
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    tmp.replace(out)


if __name__ == "__main__":
    main()
