"""What a finished job leaves in its run: summary metrics, reports, the checkpoint, the model."""

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path

import mlflow
import mlflow.pytorch
import numpy as np
import torch
from mlflow.models import infer_signature
from torch import nn

log = logging.getLogger(__name__)

MODEL_NAME = "model"
MODEL_URI_TAG = "fingerspell.model_uri"


def log_summary(metrics: Mapping[str, float], tags: Mapping[str, str] | None = None) -> None:
    """Final numbers of the job (test metrics, best val/loss) and extra tags on the active run."""
    mlflow.log_metrics({key: float(value) for key, value in metrics.items()})
    if tags:
        mlflow.set_tags(dict(tags))


def log_files(paths: Iterable[Path], artifact_path: str) -> None:
    """Attach existing files (plots, reports, checkpoints) under `artifact_path`."""
    for path in paths:
        if Path(path).is_file():
            mlflow.log_artifact(str(path), artifact_path=artifact_path)


def log_torch_model(model: nn.Module, example: torch.Tensor) -> str:
    """Log `model` with the pytorch flavour (signature + input example); return its model URI.

    Args:
        model: a plain module, float images in [0, 1] `(N, 1, 28, 28)` -> logits.
        example: a few real input images, used for the signature and the input example.
    """
    model = model.eval()
    with torch.no_grad():
        outputs = model(example).numpy()
    inputs = example.numpy().astype(np.float32)
    info = mlflow.pytorch.log_model(
        model,
        name=MODEL_NAME,
        signature=infer_signature(inputs, outputs),
        input_example=inputs,
        serialization_format="pickle",  # loads back as the plain nn.Module (needs fingerspell installed)
        # pinned here instead of inferred: inference loads the model in a subprocess (seconds)
        pip_requirements=[f"torch=={torch.__version__.split('+')[0]}", f"numpy=={np.__version__}"],
    )
    mlflow.set_tag(MODEL_URI_TAG, info.model_uri)
    log.info("logged MLflow model %s", info.model_uri)
    return str(info.model_uri)
