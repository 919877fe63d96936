"""Config -> objects of a training job: paths, threads, DataModule, LightningModule, callbacks, Trainer."""

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from fingerspell.data.datamodule import SignMNISTDataModule
from fingerspell.models.module import FingerspellModule

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobPaths:
    """Where one job writes: the configured paths for a single run, its own folder in a sweep."""

    checkpoints: Path
    reports: Path
    run_record: Path


def in_multirun() -> bool:
    """Whether this job is one of a Hydra multirun (sweep)."""
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def job_paths(cfg: DictConfig) -> JobPaths:
    """Sweep jobs must not overwrite each other's `best.ckpt`: each writes under its Hydra job folder."""
    if in_multirun():
        base = Path(HydraConfig.get().runtime.output_dir)
        return JobPaths(base / "checkpoints", base / "reports", base / "train_run.json")
    return JobPaths(
        Path(cfg.paths.checkpoints_dir),
        Path(cfg.paths.reports_dir),
        Path(cfg.paths.models_dir) / "train_run.json",
    )


def configure_threads(cfg: DictConfig) -> int:
    """Torch threads: `threads`, else the cores shared out between parallel jobs and DDP processes.

    Two processes with all cores each oversubscribe a 2-core machine and run slower than one.
    """
    threads = cfg.get("threads")
    if threads is None:
        sharers = 1
        if in_multirun():
            n_jobs = HydraConfig.get().launcher.get("n_jobs") or 1
            sharers = (os.cpu_count() or 1) if n_jobs == -1 else int(n_jobs)
        devices = cfg.trainer.get("devices", 1)
        if cfg.trainer.get("accelerator") == "cpu" and isinstance(devices, int) and devices > 1:
            sharers *= devices
        threads = max(1, (os.cpu_count() or 1) // sharers)
    torch.set_num_threads(int(threads))
    return int(threads)


def build_datamodule(cfg: DictConfig) -> SignMNISTDataModule:
    """The DataModule of `data.datamodule`, with the `augment` group's augmentation (or none)."""
    augment = instantiate(cfg.augment) if cfg.get("augment") else None
    log.info("instantiating datamodule <%s>", cfg.data.datamodule._target_)
    return instantiate(cfg.data.datamodule, augment=augment)


def build_module(cfg: DictConfig, datamodule: SignMNISTDataModule) -> FingerspellModule:
    """The LightningModule; mean, std and letters come from the processed data's `meta.json`."""
    log.info("instantiating model <%s>", cfg.model._target_)
    return FingerspellModule(
        net=OmegaConf.to_container(cfg.model, resolve=True),  # type: ignore[arg-type]
        mean=datamodule.mean,
        std=datamodule.std,
        letters=datamodule.letters,
        num_classes=datamodule.num_classes,
        label_smoothing=float(cfg.module.label_smoothing),
        outlier_exposure=float(cfg.module.get("outlier_exposure", 0.0)),
        optimizer=instantiate(cfg.optimizer),
        scheduler=instantiate(cfg.scheduler) if cfg.get("scheduler") else None,
    )


def build_callbacks(
    cfg: DictConfig, paths: JobPaths, extra: list[L.Callback], has_logger: bool
) -> list[L.Callback]:
    """Every non-null node of the `callbacks` group, checkpoints redirected to the job's folder.

    The LR monitor needs a logger, which DDP workers other than rank 0 do not have.
    """
    callbacks: list[L.Callback] = []
    for name, node in (cfg.get("callbacks") or {}).items():
        if node is None or (not has_logger and str(node._target_).endswith("LearningRateMonitor")):
            continue
        kwargs: dict[str, Any] = {}
        if name == "model_checkpoint":
            kwargs["dirpath"] = str(paths.checkpoints)
        log.info("instantiating callback <%s>", node._target_)
        callbacks.append(instantiate(node, **kwargs))
    return callbacks + extra


def build_trainer(cfg: DictConfig, callbacks: list[L.Callback], logger: Any) -> L.Trainer:
    """The `trainer` group's Trainer; no logger at all when tracking is off (`logger=False`)."""
    log.info("instantiating trainer <%s>", cfg.trainer._target_)
    return instantiate(cfg.trainer, callbacks=callbacks, logger=logger if logger is not None else False)


CHECKPOINT_NAMES = ("best.ckpt", "last.ckpt")
PREVIOUS_SUFFIX = ".previous"  # where a fresh run keeps the last run's checkpoints until it saves its own


@contextmanager
def fresh_checkpoints(folder: Path) -> Iterator[None]:
    """A fresh run without the last run's checkpoints, which come back if it saves none of its own.

    Without them no later `ckpt_path=last` resumes the wrong run. Moved aside, not deleted: a
    Ctrl-C or a crash in the first epoch used to leave the folder empty, and DVC's `best.ckpt` gone
    with it. Once the run has saved a checkpoint the old ones go.
    """
    aside = []
    for name in CHECKPOINT_NAMES:
        path = folder / name
        if path.is_file():
            kept = path.with_name(name + PREVIOUS_SUFFIX)
            path.replace(kept)
            aside.append((path, kept))
    try:
        yield
    finally:
        saved = any((folder / name).exists() for name in CHECKPOINT_NAMES)
        for path, kept in aside:
            if saved:
                kept.unlink(missing_ok=True)
            else:
                kept.replace(path)
        if aside and not saved:
            log.info("no checkpoint saved: the previous run's are back in %s", folder)
