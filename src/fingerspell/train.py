"""`fingerspell-train`: the DVC train stage and every sweep (`-m`) over the Hydra config tree."""

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import hydra
import lightning as L
from hydra.core.hydra_config import HydraConfig
from lightning.fabric.utilities.rank_zero import rank_zero_only
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from omegaconf import DictConfig, OmegaConf
from rich.syntax import Syntax
from rich.tree import Tree

from fingerspell.cli_errors import CommandFailed, fail
from fingerspell.configs import CONFIG_DIR
from fingerspell.hydra_cli import hydra_errors, run_hydra
from fingerspell.tracking.publish import publish_job
from fingerspell.tracking.runs import RunInfo, RunLogger, job_run_name, tracked_run
from fingerspell.tracking.setup import TrackingError
from fingerspell.tracking.sweep import end_interrupted_sweep, record_failed_job
from fingerspell.training.build import (
    build_datamodule,
    configure_threads,
    fresh_checkpoints,
    in_multirun,
    job_paths,
)
from fingerspell.training.callbacks import RunRecord
from fingerspell.training.checks import check_config, check_data, check_resume, resolve_ckpt_path
from fingerspell.training.job import JobResult, fit_and_test
from fingerspell.training.refused import mark_refused, refused_jobs
from fingerspell.training.reports import write_json

log = logging.getLogger(__name__)
COMMAND = "fingerspell-train"
# set by `dvc exp run` for the stage commands it runs
DVC_EXPERIMENT_TAGS = {
    "DVC_EXP_NAME": "fingerspell.dvc_experiment",
    "DVC_EXP_BASELINE_REV": "fingerspell.dvc_baseline_rev",
}


def global_rank() -> int:
    """This process's rank (0 unless it is a DDP worker, whose launcher sets RANK/LOCAL_RANK)."""
    return int(getattr(rank_zero_only, "rank", 0))


def train(cfg: DictConfig) -> dict[str, float]:
    """Check the config and data, fit, test the best checkpoint, record everything; return the metrics."""
    check_config(cfg)
    meta = check_data(cfg)
    paths = job_paths(cfg)
    ckpt_path = resolve_ckpt_path(cfg.get("ckpt_path"), paths.checkpoints)
    check_resume(ckpt_path, cfg)
    threads = configure_threads(cfg)
    L.seed_everything(int(cfg.seed), workers=True, verbose=False)
    log.info(
        "training with %d torch threads; data %s (fingerprint %s)",
        threads,
        cfg.paths.processed_dir,
        meta["fingerprint"][:12],
    )
    datamodule = build_datamodule(cfg)
    settings = (cfg.get("logger") or {}).get("mlflow")
    fresh = bool(cfg.get("train")) and not ckpt_path  # a new run must not leave the old checkpoints
    if global_rank() != 0 or not settings:  # DDP workers and logger=none: no tracking
        with fresh_checkpoints(paths.checkpoints) if global_rank() == 0 and fresh else nullcontext():
            result = fit_and_test(cfg, datamodule, paths, ckpt_path)
        if result.is_global_zero:
            write_run_record(paths.run_record, None, result)
        return result.metrics
    tags = {
        "fingerspell.data_fingerprint": str(meta["fingerprint"]),
        "fingerspell.model": str(cfg.model._target_),
        "fingerspell.overrides": " ".join(HydraConfig.get().overrides.task)
        if HydraConfig.initialized()
        else "",
    }
    # `dvc exp run` passes its -S values through params.yaml, not as overrides: name the experiment
    tags |= {tag: os.environ[var] for var, tag in DVC_EXPERIMENT_TAGS.items() if os.environ.get(var)}
    resume_id = RunRecord.read(ckpt_path).get("run_id") if ckpt_path else None
    with tracked_run(settings, cfg, tags, run_name(settings), resume_id) as run:
        record = {"run_id": run.run_id, "experiment_id": run.experiment_id, "tracking_uri": run.tracking_uri}
        # only once the store has answered: a refused start keeps the last run's files in place
        with fresh_checkpoints(paths.checkpoints) if fresh else nullcontext():
            result = fit_and_test(cfg, datamodule, paths, ckpt_path, RunLogger(run), [RunRecord(record)])
        example = datamodule.splits["val"].images[:4].float().div(255)
        published = publish_job(
            run,
            settings,
            result.metrics,
            result.reports,
            result.best_checkpoint,
            result.module.inference_model(),
            example,
        )
        write_run_record(paths.run_record, run, result, published)
    return result.metrics


def run_name(settings: DictConfig) -> str:
    """The run's name: a sweep job's, the configured one, the DVC experiment's, or the time.

    A sweep job's number and overrides come after the configured name, if any.

    The time as `train-20261127-091530`. Not MLflow's random name: `seed_everything` has seeded Python's `random` by then, so every
    run with one seed got the same name.
    """
    if in_multirun():  # each job its own name, even under a configured one: failures are found by name
        job = job_run_name(int(HydraConfig.get().job.num), list(HydraConfig.get().overrides.task))
        return f"{settings.run_name} {job}" if settings.get("run_name") else job
    if settings.get("run_name"):
        return str(settings.run_name)
    if os.environ.get("DVC_EXP_NAME"):  # the DVC experiment's own name: one name in both tables
        return os.environ["DVC_EXP_NAME"]
    return f"train-{time.strftime('%Y%m%d-%H%M%S')}"


def write_run_record(
    path: Path, run: RunInfo | None, result: JobResult, published: dict | None = None
) -> None:
    """`models/train_run.json`: how the export stage finds this job's checkpoint and MLflow run."""
    record = {
        "run_id": run.run_id if run else None,
        "experiment_id": run.experiment_id if run else None,
        "tracking_uri": run.tracking_uri if run else None,
        "best_checkpoint": str(result.best_checkpoint) if result.best_checkpoint else None,
        "best_val_loss": result.metrics.get("val/loss_best"),
        "model_uri": (published or {}).get("model_uri"),
        "registered": (published or {}).get("registered"),
        **result.metrics,
    }
    write_json(path, record)


def show_config(cfg: DictConfig) -> None:
    """Print the resolved config as a tree, one branch per top-level group, before training."""
    from rich.console import Console

    tree = Tree("config", guide_style="dim")
    for key, value in cfg.items():
        branch = tree.add(str(key), style="bold")
        text = OmegaConf.to_yaml(value, resolve=True) if isinstance(value, DictConfig) else str(value)
        branch.add(Syntax(text.rstrip(), "yaml", theme="ansi_dark", background_color="default"))
    Console(stderr=False).print(tree)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def _hydra_main(cfg: DictConfig) -> float | None:
    try:
        with one_line_errors():
            check_config(cfg)  # a refused value: its one line, not the whole config tree before it
            if global_rank() == 0:
                show_config(cfg)
            metrics = train(cfg)
    except CommandFailed as failed:
        # a store that cannot be reached fails every job alike: end the sweep there
        if not in_multirun() or isinstance(failed.__context__, TrackingError):
            raise
        failed_job(cfg, failed.message)
        return None  # the sweepers go on: Optuna records a non-number as a failed trial
    # the sweep objective is the best checkpoint's value (`val/loss` -> `val/loss_best`), not the last epoch's
    name = str(cfg.get("optimized_metric"))
    value = metrics.get(f"{name}_best", metrics.get(name))
    return float(value) if value is not None else None


def failed_job(cfg: DictConfig, message: str) -> None:
    """A sweep job refused for its config or data: the sweep goes on without it.

    Its one line is already printed; its job folder gets a marker (the command exits 1 at the
    end, whichever process ran the job), and the parent run lists it FAILED with the reason.
    """
    hydra = HydraConfig.get()
    settings = (cfg.get("logger") or {}).get("mlflow")
    name = run_name(settings) if settings else job_run_name(int(hydra.job.num), list(hydra.overrides.task))
    if global_rank() != 0:
        return
    mark_refused(name, message)
    if settings:
        try:
            record_failed_job(str(settings.experiment_name), name, message)
        except Exception as err:  # best effort: the store may be the fault itself
            log.warning("could not record the failed job in MLflow: %s", err)
    log.error("sweep job %s failed; the sweep goes on", name)


@contextmanager
def one_line_errors() -> Iterator[None]:
    """Foreseeable faults (config, data, tracking store) end as `fingerspell-train: error: ...`, exit 1.

    Used inside the task function too: Hydra would otherwise add its own "Error executing job" line.
    """
    with hydra_errors(COMMAND, also=(TrackingError, MisconfigurationException)):
        yield


def main() -> None:
    """Console entry point of `fingerspell-train`: exit 1 when any job of a sweep failed."""
    refused_jobs.clear()
    status = "FAILED"  # of a sweep's parent run, if the sweep ends before its end callback
    try:
        run_hydra(COMMAND, _hydra_main, also=(TrackingError, MisconfigurationException))
    except KeyboardInterrupt as stop:  # Ctrl-C: the job's run is KILLED (tracked_run), its parent too
        status = "KILLED"
        fail(COMMAND, getattr(stop, "message", "interrupted"), exit_code=130)
    except RuntimeError as err:
        if "srun" not in str(err):  # submitit's own check, off a SLURM cluster
            raise
        fail(
            COMMAND,
            "hydra/launcher=slurm needs a SLURM cluster (no srun here); run it on a login node, "
            "or hydra/launcher=joblib on this machine",
        )
    finally:
        end_interrupted_sweep(status)
    if refused_jobs:  # filled from the jobs' markers by the RefusedJobsCallback
        fail(COMMAND, f"{len(refused_jobs)} sweep job(s) did not finish: {', '.join(refused_jobs)}")


if __name__ == "__main__":
    main()
