"""Where a model comes from: a path, or an MLflow model URI resolved only when one is given."""

import os
from pathlib import Path

from fingerspell.inference.predictor import ModelError

MLFLOW_SCHEMES = ("models:/", "runs:/", "mlflow-artifacts:/")


def is_mlflow_uri(spec: str) -> bool:
    """True for `models:/name@alias`, `runs:/id/path` and the like."""
    return str(spec).startswith(MLFLOW_SCHEMES)


def resolve_model_path(spec: str | Path) -> Path:
    """A local `.onnx` path for `spec`, downloading from MLflow if it is a model URI.

    MLflow is imported here, lazily: plain paths never pay for it.
    """
    if not is_mlflow_uri(str(spec)):
        return Path(spec)
    import mlflow
    from mlflow.exceptions import MlflowException

    from fingerspell.tracking.setup import tracking_uri

    # the store training and export write to (the project's mlflow.db, found from any
    # subfolder, or MLFLOW_TRACKING_URI), not MLflow's default of ./mlflow.db here
    uri = tracking_uri()
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        raise ModelError(
            f"{spec}: no MLflow store at {uri.removeprefix('sqlite:///')}; run from the project "
            "folder or set MLFLOW_TRACKING_URI"
        )
    # set for the process, not only passed: MLflow resolves a registered version's own source
    # (`models:/m-...` since MLflow 3) through its global URIs
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(os.environ.get("MLFLOW_REGISTRY_URI") or uri)
    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=str(spec)))
    except MlflowException as err:
        raise ModelError(f"{spec}: cannot resolve in MLflow ({str(err).splitlines()[0]})") from err
    if local.is_file() and local.suffix == ".onnx":
        return local
    candidates = sorted(local.rglob("*.onnx")) if local.is_dir() else []
    if not candidates:
        raise ModelError(f"{spec}: no .onnx file in that MLflow model; log it with fingerspell-export")
    return candidates[0]
