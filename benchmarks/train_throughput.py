"""Lightning training throughput vs a bare PyTorch loop: same net, data, batch, augmentation, optimizer.

Both sides train `--steps` batches from the real train split through the same DataModule
(batch augmentation included) and AdamW; Lightning runs the project's FingerspellModule
(metrics, logging hooks) with checkpointing, validation and loggers off. Runs alternate
bare, Lightning, bare, ... so drift on a shared machine hits both alike; medians and the ratio
go to benchmarks/results/train_throughput.json. Goal: Lightning >= 0.9x the bare loop.

    python benchmarks/train_throughput.py [--model cnn] [--steps 40] [--repeats 3] [--batch-size 128]
"""

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from fingerspell.configs import CONFIG_DIR
from fingerspell.data.datamodule import SignMNISTDataModule
from fingerspell.models.module import FingerspellModule

REPO = Path(__file__).resolve().parents[1]
GOAL = 0.9


def parts(model: str, batch_size: int) -> tuple[dict, SignMNISTDataModule, dict]:
    with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=[f"model={model}", f"data.datamodule.batch_size={batch_size}"])
    dm = instantiate(
        cfg.data.datamodule, augment=instantiate(cfg.augment), data_dir=str(REPO / "data/processed")
    )
    dm.setup()
    return OmegaConf.to_container(cfg.model, resolve=True), dm, OmegaConf.to_container(cfg.optimizer)  # type: ignore[return-value]


def make_module(net: dict, dm: SignMNISTDataModule, lr: float) -> FingerspellModule:
    return FingerspellModule(
        net,
        dm.mean,
        dm.std,
        dm.letters,
        dm.num_classes,
        0.05,
        optimizer=lambda params: torch.optim.AdamW(params, lr=lr),
    )


def bare(net: dict, dm: SignMNISTDataModule, steps: int, lr: float) -> float:
    """A hand-written loop over the same batches: the floor Lightning is measured against."""
    torch.manual_seed(0)
    module = make_module(net, dm, lr).train()
    opt = torch.optim.AdamW(module.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    for i, (images, labels) in enumerate(dm.train_dataloader()):
        if i == steps:
            break
        x = dm.augment(images.float().div_(255), generator=gen)
        loss = F.cross_entropy(module(x), labels, label_smoothing=0.05)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - start


def lightning(net: dict, dm: SignMNISTDataModule, steps: int, lr: float) -> float:
    torch.manual_seed(0)
    module = make_module(net, dm, lr)
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=steps,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    start = time.perf_counter()
    trainer.fit(module, datamodule=dm)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    net, dm, opt = parts(args.model, args.batch_size)
    lr = float(opt["lr"])
    bare(net, dm, 3, lr)  # warm-up: allocator, oneDNN kernels
    lightning(net, dm, 3, lr)
    times: dict[str, list[float]] = {"bare": [], "lightning": []}
    for _ in range(args.repeats):
        times["bare"].append(bare(net, dm, args.steps, lr))
        times["lightning"].append(lightning(net, dm, args.steps, lr))
    images = args.steps * args.batch_size
    rate = {side: images / statistics.median(t) for side, t in times.items()}
    result = {
        "benchmark": "train_throughput",
        "model": args.model,
        "batch_size": args.batch_size,
        "steps": args.steps,
        "repeats": args.repeats,
        "seconds": times,
        "images_per_s": rate,
        "ratio_lightning_to_bare": rate["lightning"] / rate["bare"],
        "goal_ratio": GOAL,
        "meets_goal": rate["lightning"] / rate["bare"] >= GOAL,
        "threads": torch.get_num_threads(),
        "machine": {
            "cpu_count": os.cpu_count(),
            "processor": platform.processor(),
            "load_avg": os.getloadavg(),
        },
    }
    out = REPO / "benchmarks" / "results" / "train_throughput.json"
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(out)
    print(
        json.dumps({k: result[k] for k in ("model", "images_per_s", "ratio_lightning_to_bare", "meets_goal")})
    )


if __name__ == "__main__":
    main()
