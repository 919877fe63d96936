"""One MLflow run per training job: start (or continue), tag, log the config, end with a status."""

import logging
import os
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import mlflow
from lightning.pytorch.loggers import MLFlowLogger
from mlflow.exceptions import MlflowException
from omegaconf import DictConfig, OmegaConf

from fingerspell.tracking.setup import check_reachable, experiment_id, repo_root, tracking_uri, use_store

log = logging.getLogger(__name__)

# Set by the sweep callback in the launching process; every job of the sweep becomes its child.
PARENT_RUN_ENV = "FINGERSPELL_PARENT_RUN_ID"
SWEEP_KEYS_ENV = "FINGERSPELL_SWEEP_KEYS"  # comma-separated keys the sweep varies, to name child runs
MAX_PARAM_CHARS = 6000


def job_run_name(job_num: int, job_overrides: list[str]) -> str:
    """A sweep job's run name: its number and the values of the swept keys (`#1 model=cnn_small`)."""
    swept = set(filter(None, os.environ.get(SWEEP_KEYS_ENV, "").split(",")))
    chosen = [o for o in job_overrides if o.split("=", 1)[0].lstrip("+~") in swept]
    return f"#{job_num} " + " ".join(chosen) if chosen else f"#{job_num}"


@dataclass(frozen=True)
class RunInfo:
    """Where a job's metrics go: enough to find the run again (export stage, resume)."""

    run_id: str
    experiment_id: str
    tracking_uri: str


def git_commit() -> str:
    """The checkout's commit (with `-dirty` when it has changes), or `unknown` outside git."""
    try:
        root = repo_root()
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{sha}-dirty" if dirty else sha


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config -> `{"optimizer.lr": "0.001", ...}`, the shape MLflow params take."""
    flat: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = str(value)[:MAX_PARAM_CHARS]
    return flat


class RunLogger(MLFlowLogger):
    """Lightning's MLflow logger bound to a run that `tracked_run` owns.

    It logs metrics only: the config is logged once by `tracked_run`, which also ends the run
    (Lightning would mark it finished after `fit`, before the test and the reports).
    """

    def __init__(self, run: RunInfo) -> None:
        super().__init__(tracking_uri=run.tracking_uri, run_id=run.run_id, log_model=False)

    def log_hyperparams(self, params: Any) -> None:
        """The resolved config is already logged as params and as a YAML artifact."""

    def finalize(self, status: str = "success") -> None:
        """`tracked_run` ends the run with its final status."""


def _resumable(client: mlflow.MlflowClient, run_id: str | None) -> str | None:
    if not run_id:
        return None
    try:
        run = client.get_run(run_id)
    except MlflowException:
        return None
    return run_id if run.info.lifecycle_stage == "active" else None


@contextmanager
def tracked_run(
    settings: Mapping[str, Any],
    config: DictConfig,
    tags: Mapping[str, str],
    run_name: str | None = None,
    resume_run_id: str | None = None,
) -> Iterator[RunInfo]:
    """Start (or continue) the job's run; end it FINISHED, FAILED on an error, KILLED on Ctrl-C.

    Args:
        settings: the `logger.mlflow` config node (experiment name, system metrics, ...).
        config: the resolved job config, logged as `config.yaml` and as flattened params.
        tags: extra tags (data fingerprint, model, overrides).
        run_name: the run's display name.
        resume_run_id: the run recorded in the checkpoint being resumed; continued when it is
            in this store, otherwise linked by the tag `fingerspell.resumed_from`.
    """
    uri = settings.get("tracking_uri") or tracking_uri()
    check_reachable(uri)
    client = use_store(uri)
    exp_id = experiment_id(client, str(settings["experiment_name"]))
    all_tags = {"fingerspell.git_commit": git_commit(), **tags}
    continue_id = _resumable(client, resume_run_id)
    if resume_run_id and not continue_id:
        all_tags["fingerspell.resumed_from"] = resume_run_id
    parent = os.environ.get(PARENT_RUN_ENV)
    if parent:
        all_tags["mlflow.parentRunId"] = parent
    mlflow.end_run()  # a stale fluent run (earlier job in this process) must not become the parent
    active = mlflow.start_run(
        run_id=continue_id,
        experiment_id=exp_id,
        run_name=None if continue_id else run_name,
        tags=all_tags,
        log_system_metrics=bool(settings.get("log_system_metrics", False)),
    )
    info = RunInfo(active.info.run_id, exp_id, uri)
    if continue_id:
        mlflow.set_tag("fingerspell.resumed", "true")
        log.info("continuing MLflow run %s", continue_id)
    else:
        container = OmegaConf.to_container(config, resolve=True)
        mlflow.log_dict(container, "config.yaml")  # type: ignore[arg-type]
        mlflow.log_params(flatten(container))  # type: ignore[arg-type]
        log.info("MLflow run %s in experiment %s (%s)", info.run_id, settings["experiment_name"], uri)
    try:
        yield info
    except KeyboardInterrupt:
        mlflow.end_run(status="KILLED")
        raise
    except BaseException:
        mlflow.end_run(status="FAILED")
        raise
    mlflow.end_run(status="FINISHED")
