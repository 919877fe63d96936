"""The LightningModule: loss, metrics and optimisation around a plain net."""

import math
from collections.abc import Callable, Mapping
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from torch import Tensor, nn
from torchmetrics import MeanMetric, MetricCollection, MinMetric
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from fingerspell.data.outliers import hand_free, uniform_loss

OptimizerFactory = Callable[..., torch.optim.Optimizer]
SchedulerFactory = Callable[..., torch.optim.lr_scheduler.LRScheduler]

# Schedulers whose horizon is the run's length in optimizer steps, filled in at fit time.
HORIZON_ARGS = {"CosineAnnealingLR": "T_max", "OneCycleLR": "total_steps", "LinearLR": "total_iters"}


class Normalized(nn.Module):
    """`net` behind a fixed normalisation: float images in [0, 1] -> logits.

    This is the model that leaves training (MLflow model, ONNX export), so a caller never
    repeats the data set's mean and std.
    """

    mean: Tensor
    std: Tensor

    def __init__(self, net: nn.Module, mean: float, std: float) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32))

    def forward(self, x: Tensor) -> Tensor:
        """(N, 1, 28, 28) float in [0, 1] -> (N, num_classes) logits."""
        return self.net((x - self.mean) / self.std)


MAX_EPOCHS_KEY = "fingerspell_max_epochs"


class FingerspellModule(L.LightningModule):
    """Trains `net` with cross-entropy; logs `stage/name` metrics; rebuilds from its checkpoint alone.

    `val/loss` and `test/loss` are the plain cross-entropy (NLL) even when training uses label
    smoothing, so runs with different smoothing rank fairly on `val/loss`.

    Args:
        net: config of the net (`_target_` and arguments), instantiated here and saved in the
            hyper-parameters, so `load_from_checkpoint(path)` needs no other argument.
        mean: train-split pixel mean in [0, 1] units (from `meta.json`).
        std: train-split pixel standard deviation in [0, 1] units.
        letters: class letters in class-index order.
        num_classes: number of classes.
        label_smoothing: label smoothing of the training loss.
        outlier_exposure: weight of the outlier-exposure loss (0: off). When on, every training
            batch is joined by half as many hand-free images (`data/outliers.py`) whose target
            is the uniform distribution, so the model learns to be unsure without a hand.
        optimizer: partial optimizer (`_partial_: true`), bound to the parameters here.
        scheduler: partial LR scheduler, stepped every batch; its horizon (`T_max`,
            `total_steps`) is set to the run's total steps when the config leaves it out.
    """

    mean: Tensor
    std: Tensor

    def __init__(
        self,
        net: Mapping[str, Any],
        mean: float,
        std: float,
        letters: list[str],
        num_classes: int,
        label_smoothing: float,
        outlier_exposure: float = 0.0,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
    ) -> None:
        super().__init__()
        if len(letters) != num_classes:
            raise ValueError(f"{len(letters)} letters for num_classes={num_classes}")
        self.save_hyperparameters(ignore=["optimizer", "scheduler"], logger=False)
        self.net: nn.Module = instantiate(dict(net))
        self.register_buffer("mean", torch.tensor(float(mean)))
        self.register_buffer("std", torch.tensor(float(std)))
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.label_smoothing = label_smoothing
        if outlier_exposure < 0:
            raise ValueError(f"module.outlier_exposure={outlier_exposure:g} must be >= 0")
        self.outlier_exposure = outlier_exposure
        metrics = MetricCollection(
            {
                "acc": MulticlassAccuracy(num_classes, average="micro"),
                "f1": MulticlassF1Score(num_classes, average="macro"),
            }
        )
        self.train_metrics = metrics.clone(prefix="train/")
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")
        self.train_loss, self.val_loss, self.test_loss = MeanMetric(), MeanMetric(), MeanMetric()
        self.val_loss_best = MinMetric()
        # per-epoch rows for the training curves; kept in checkpoints so a resumed run has them all
        self.history: list[dict[str, float]] = []
        self._val_row: dict[str, float] = {}

    def forward(self, x: Tensor) -> Tensor:
        """(N, 1, 28, 28) float images in [0, 1] -> (N, num_classes) logits."""
        return self.net((x - self.mean) / self.std)

    def inference_model(self) -> Normalized:
        """A plain `nn.Module` copy for export: [0, 1] images -> logits, in eval mode."""
        import copy

        return Normalized(copy.deepcopy(self.net), float(self.mean), float(self.std)).eval()

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        n = x.shape[0]
        if self.outlier_exposure > 0:
            # half as many hand-free images (at least one), in the same forward pass, so batch
            # norm sees the mix it is trained on
            logits = self(torch.cat([x, hand_free(x[: max(2, n // 2)])]))
            logits, outlier_logits = logits[:n], logits[n:]
        else:
            logits = self(x)
        loss = F.cross_entropy(logits, y, label_smoothing=self.label_smoothing)
        if self.outlier_exposure > 0:
            loss = loss + self.outlier_exposure * uniform_loss(outlier_logits)
        self.train_loss(loss.detach())
        self.train_metrics.update(logits.detach(), y)
        self.log("train/loss_step", loss.detach(), on_step=True, on_epoch=False, prog_bar=True)
        return loss

    def on_train_epoch_end(self) -> None:
        # validation of this epoch has run already, so the history row is complete here
        loss = self.train_loss.compute()
        self.train_loss.reset()
        metrics = self.train_metrics.compute()
        self.train_metrics.reset()
        self.log("train/loss", loss)
        self.log_dict(metrics)
        row = {"epoch": float(self.current_epoch + 1), "train/loss": float(loss)}
        row.update({key: float(value) for key, value in metrics.items()})
        row.update(self._val_row)
        row["lr"] = (
            float(self.trainer.optimizers[0].param_groups[0]["lr"]) if self.trainer.optimizers else math.nan
        )
        self.history.append(row)
        self._val_row = {}

    def _eval_step(
        self, batch: tuple[Tensor, Tensor], loss_metric: MeanMetric, metrics: MetricCollection
    ) -> None:
        x, y = batch
        logits = self(x)
        loss_metric.update(F.cross_entropy(logits, y, reduction="none"))
        metrics.update(logits, y)

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._eval_step(batch, self.val_loss, self.val_metrics)

    def on_validation_epoch_end(self) -> None:
        loss = self.val_loss.compute()
        self.val_loss.reset()
        if not self.trainer.sanity_checking:
            self.val_loss_best(loss)
            self.log("val/loss_best", self.val_loss_best.compute(), sync_dist=False)
        metrics = self.val_metrics.compute()
        self.val_metrics.reset()
        self.log("val/loss", loss, prog_bar=True)
        self.log_dict(metrics, prog_bar=True)
        if not self.trainer.sanity_checking:
            self._val_row = {"val/loss": float(loss), **{key: float(value) for key, value in metrics.items()}}

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._eval_step(batch, self.test_loss, self.test_metrics)

    def on_test_epoch_end(self) -> None:
        loss = self.test_loss.compute()
        self.test_loss.reset()
        self.log("test/loss", loss)
        self.log("test/nll", loss)
        self.log_dict(self.test_metrics.compute())
        self.test_metrics.reset()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["history"] = list(self.history)
        # the schedule's length: `ckpt_path=last` must resume with the same (training.checks)
        checkpoint[MAX_EPOCHS_KEY] = self.trainer.max_epochs

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.history = list(checkpoint.get("history", []))

    def configure_optimizers(self) -> Any:
        if self.optimizer_factory is None:
            raise ValueError("FingerspellModule needs an optimizer to train; pass optimizer=...")
        optimizer = self.optimizer_factory(params=self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        kwargs: dict[str, Any] = {}
        func = getattr(self.scheduler_factory, "func", self.scheduler_factory)
        horizon = HORIZON_ARGS.get(getattr(func, "__name__", ""))
        if horizon and horizon not in getattr(self.scheduler_factory, "keywords", {}):
            # at least 10: OneCycleLR divides by its warm-up length, zero for a few-step debug run
            kwargs[horizon] = max(10, int(self.trainer.estimated_stepping_batches))
        scheduler = self.scheduler_factory(optimizer=optimizer, **kwargs)
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            # reacts to validation, so it steps once per epoch, after val/loss exists
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "monitor": "val/loss"}}
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
