"""Fit, test the best checkpoint, write the reports: a training job without any tracking calls."""

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig

from fingerspell.data.datamodule import SignMNISTDataModule
from fingerspell.models.module import FingerspellModule
from fingerspell.training.build import JobPaths, build_callbacks, build_module, build_trainer, in_multirun
from fingerspell.training.reports import predict, write_curves, write_json, write_test_reports

log = logging.getLogger(__name__)


@dataclass
class JobResult:
    """What a job produced: final metrics, the best checkpoint, report files, the trained module."""

    metrics: dict[str, float]
    best_checkpoint: Path | None
    module: FingerspellModule
    reports: dict[str, Path] = field(default_factory=dict)
    is_global_zero: bool = True


def _best_checkpoint(trainer: L.Trainer) -> Path | None:
    callback = trainer.checkpoint_callback
    if isinstance(callback, ModelCheckpoint) and callback.best_model_path:
        return Path(callback.best_model_path)
    return None


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during fit or test, with the line that says how to go on from here."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@contextmanager
def interruptible(trainer: L.Trainer, paths: JobPaths) -> Iterator[None]:
    """Ctrl-C as `Interrupted`, not Lightning's exit 1 (which read as a crash: the run was FAILED).

    The MLflow run then ends KILLED, and the line says whether `ckpt_path=last` can continue it.
    """
    try:
        yield
    except SystemExit as stop:
        if not trainer.interrupted:
            raise
        if in_multirun():
            message = "interrupted; the sweep stopped here (finished jobs are in MLflow): run it again"
        elif (paths.checkpoints / "last.ckpt").is_file():
            message = "interrupted; continue with ckpt_path=last (and the same overrides)"
        else:
            message = "interrupted before the first checkpoint was saved; run it again"
        raise Interrupted(message) from stop


def fit_and_test(
    cfg: DictConfig,
    datamodule: SignMNISTDataModule,
    paths: JobPaths,
    ckpt_path: str | None,
    logger: Any = None,
    extra_callbacks: list[L.Callback] | None = None,
) -> JobResult:
    """Train (resuming from `ckpt_path` if given), test the best checkpoint, write reports.

    Only the global-zero process writes reports; the others return after the test.
    """
    module = build_module(cfg, datamodule)
    trainer = build_trainer(
        cfg, build_callbacks(cfg, paths, extra_callbacks or [], logger is not None), logger
    )
    metrics: dict[str, float] = {}
    start = time.perf_counter()
    if cfg.get("train"):
        with interruptible(trainer, paths):
            trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
        metrics["time/fit_s"] = time.perf_counter() - start
        metrics["epochs"] = float(trainer.current_epoch)
    best = _best_checkpoint(trainer)
    score = getattr(trainer.checkpoint_callback, "best_model_score", None)
    if (
        best is not None and score is not None
    ):  # None: Lightning's own checkpoint (`callbacks=none`) ranks nothing
        metrics["val/loss_best"] = float(score)
    if cfg.get("test"):
        test_ckpt = str(best) if best is not None else (None if cfg.get("train") else ckpt_path)
        trained = list(module.history)
        # loads the best weights into `module`, so the reports and the logged model are the best ones
        with interruptible(trainer, paths):
            results = trainer.test(module, datamodule=datamodule, ckpt_path=test_ckpt, verbose=False)
        if cfg.get("train"):  # the best checkpoint's history ends at its epoch; the curves show every one
            module.history = trained
        metrics.update({key: float(value) for key, value in (results[0] if results else {}).items()})
    result = JobResult(metrics, best, module, is_global_zero=trainer.is_global_zero)
    if trainer.is_global_zero:
        result.reports = write_reports(module, datamodule, paths.reports, metrics, bool(cfg.get("test")))
    return result


def write_reports(
    module: FingerspellModule,
    datamodule: SignMNISTDataModule,
    out_dir: Path,
    metrics: dict[str, float],
    test: bool,
) -> dict[str, Path]:
    """Curves from the module's history; test-split reports; `train_metrics.json` for DVC."""
    reports = write_curves(module.history, out_dir) if module.history else {}
    if test:
        images = datamodule.splits["test"].images.numpy()
        labels = datamodule.splits["test"].labels.numpy()
        model = module.inference_model()
        with torch.inference_mode():
            probs = predict(model, images)
        reports.update(write_test_reports(probs, images, labels, datamodule.letters, out_dir))
    reports["metrics"] = write_json(out_dir / "train_metrics.json", metrics)
    log.info("reports in %s", out_dir)
    return reports
