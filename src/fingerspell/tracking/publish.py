"""Everything a finished training job leaves in its MLflow run, and its registry entry."""

import logging
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mlflow
import torch
from torch import nn

from fingerspell.tracking.artifacts import log_files, log_summary, log_torch_model
from fingerspell.tracking.registry import register
from fingerspell.tracking.runs import PARENT_RUN_ENV, RunInfo

log = logging.getLogger(__name__)


def publish_job(
    run: RunInfo,
    settings: Mapping[str, Any],
    metrics: Mapping[str, float],
    reports: Mapping[str, Path],
    best_checkpoint: Path | None,
    model: nn.Module,
    example: torch.Tensor,
) -> dict[str, Any]:
    """Log final metrics, reports, the best checkpoint and the model; register it unless in a sweep.

    In a sweep the parent run registers only the winner (see `tracking.sweep`).

    Returns:
        `{"model_uri", "registered": {...} or None}`.
    """
    log_summary(metrics)
    log_files(reports.values(), "reports")
    if best_checkpoint is not None and settings.get("log_checkpoint"):
        log_files([best_checkpoint], "checkpoints")
    out: dict[str, Any] = {"model_uri": None, "registered": None}
    if settings.get("log_model"):
        out["model_uri"] = log_torch_model(model, example)
    name = settings.get("registered_model_name")
    val_loss = metrics.get("val/loss_best", math.nan)
    if out["model_uri"] and name and not os.environ.get(PARENT_RUN_ENV) and not math.isnan(val_loss):
        out["registered"] = register(
            out["model_uri"],
            run.run_id,
            val_loss,
            str(name),
            str(settings["champion_alias"]),
            bool(settings["promote"]),
        )
        mlflow.set_tag("fingerspell.registered_version", out["registered"]["version"])
    return out
