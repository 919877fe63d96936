"""A Hydra callback that turns a multirun into one MLflow parent run with a child run per job.

The parent is created once, in the launching process, before any job starts: parallel jobs
(joblib) then only add child runs, and nobody races to create the store or the experiment.
"""

import logging
import math
import os
import time
from typing import Any

import mlflow
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from mlflow import MlflowClient
from mlflow.entities import Run
from omegaconf import DictConfig, OmegaConf

from fingerspell.cli_errors import fail
from fingerspell.tracking.artifacts import MODEL_URI_TAG
from fingerspell.tracking.registry import register
from fingerspell.tracking.runs import PARENT_RUN_ENV, SWEEP_KEYS_ENV, git_commit
from fingerspell.tracking.setup import TrackingError, check_reachable, experiment_id, tracking_uri, use_store

log = logging.getLogger(__name__)

RANK_METRIC = "val/loss_best"
RANKING_TAG = "fingerspell.ranking"
TABLE_METRICS = ("val/loss_best", "val/acc", "test/acc", "test/f1")


def swept_keys(config: DictConfig) -> list[str]:
    """Keys a multirun varies: comma/range/glob overrides and the sweeper's own search space."""
    overrides = list(config.hydra.overrides.task)
    parsed = OverridesParser.create().parse_overrides(overrides)
    keys = [o.get_key_element().lstrip("+~") for o in parsed if o.is_sweep_override()]
    return keys + [str(k) for k in (config.hydra.sweeper.get("params") or {})]


def ranking(runs: list[Run]) -> list[dict[str, Any]]:
    """Jobs sorted by best `val/loss` (lowest first); jobs without it (failed) go last."""
    rows = []
    for run in runs:
        metrics = run.data.metrics
        row: dict[str, Any] = {
            "run_id": run.info.run_id,
            "run_name": run.info.run_name,
            "status": run.info.status,
            "overrides": run.data.tags.get("fingerspell.overrides", ""),
            "model_uri": run.data.tags.get(MODEL_URI_TAG),
        }
        row.update({key: metrics.get(key, math.nan) for key in TABLE_METRICS})
        rows.append(row)
    return sorted(rows, key=lambda r: (math.isnan(r[RANK_METRIC]), r[RANK_METRIC]))


def ranking_markdown(rows: list[dict[str, Any]]) -> str:
    """The ranking as a markdown table (tagged on the parent and printed at the end)."""
    head = ["rank", "run", *TABLE_METRICS, "status"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for i, row in enumerate(rows, 1):
        values = [f"{row[key]:.5f}" if not math.isnan(row[key]) else "-" for key in TABLE_METRICS]
        lines.append(f"| {i} | {row['run_name']} | " + " | ".join(values) + f" | {row['status']} |")
    return "\n".join(lines)


ERROR_TAG = "fingerspell.error"


def record_failed_job(experiment_name: str, run_name: str, error: str) -> None:
    """A sweep job refused before its run started still shows under the parent: FAILED, with why.

    Without it the parent would rank only the jobs that ran and end FINISHED. A job that failed
    inside its own run has that run (marked FAILED already) tagged with the reason instead.
    """
    parent = os.environ.get(PARENT_RUN_ENV)
    if not parent:
        return
    client = MlflowClient(tracking_uri())
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        return
    children = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent}'", max_results=10_000
    )
    existing = [run for run in children if run.info.run_name == run_name]
    if existing:
        client.set_tag(existing[0].info.run_id, ERROR_TAG, error[:5000])
        return
    run = client.create_run(
        experiment.experiment_id,
        run_name=run_name,
        tags={"mlflow.parentRunId": parent, ERROR_TAG: error[:5000], "fingerspell.kind": "job"},
    )
    client.set_terminated(run.info.run_id, "FAILED")


def end_interrupted_sweep(status: str = "FAILED") -> None:
    """Mark FAILED (KILLED after Ctrl-C) a parent run whose multirun stopped before its end callback.

    That happens when an error escapes a job (a missing config group, a crash) or the sweeper
    (Optuna with no completed trial); the parent would otherwise stay RUNNING for good.
    """
    parent = os.environ.pop(PARENT_RUN_ENV, None)
    os.environ.pop(SWEEP_KEYS_ENV, None)
    if not parent:
        return
    uri = tracking_uri()
    try:
        check_reachable(uri)  # a dead server: no minutes of client retries on the way out
        MlflowClient(uri).set_terminated(parent, status)
    except Exception as err:  # best effort, on the way out of an error
        log.warning("could not mark the sweep's parent run %s %s: %s", parent, status, err)


class MLflowSweepCallback(Callback):
    """Parent run for a Hydra multirun; at the end: ranking table, best child registered.

    Args:
        experiment_name: MLflow experiment of the parent and its children.
        registered_model_name: registry name the winner is registered under (None: no registry).
        champion_alias: alias given to the winner when it beats the current holder.
        promote: whether the alias may move at all.
    """

    def __init__(
        self, experiment_name: str, registered_model_name: str | None, champion_alias: str, promote: bool
    ) -> None:
        self.experiment_name = experiment_name
        self.registered_model_name = registered_model_name
        self.champion_alias, self.promote = champion_alias, promote
        self.parent_id: str | None = None
        self.experiment_id: str | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        trials = config.hydra.sweeper.get("n_trials")
        if trials is not None and (isinstance(trials, bool) or not isinstance(trials, int) or trials < 1):
            # before the parent run: Optuna's own "No trials are completed yet" left it FAILED and
            # empty. A SystemExit, as Hydra turns a callback's exceptions into warnings and goes on.
            fail("fingerspell-train", f"hparams_search.n_trials={trials!r} must be a whole number >= 1")
        uri = tracking_uri()
        try:
            check_reachable(uri)
        except TrackingError as err:  # ends the sweep in one line, before any job
            fail("fingerspell-train", str(err))
        client = use_store(uri)
        self.experiment_id = experiment_id(client, self.experiment_name)
        overrides = " ".join(OmegaConf.to_container(config.hydra.overrides.task) or [])  # type: ignore[arg-type]
        run = client.create_run(
            self.experiment_id,
            run_name=f"sweep-{time.strftime('%Y%m%d-%H%M%S')}",
            tags={
                "fingerspell.kind": "sweep",
                "fingerspell.sweep_overrides": overrides,
                "fingerspell.sweeper": str(config.hydra.sweeper.get("_target_", "")),
                "fingerspell.launcher": str(config.hydra.launcher.get("_target_", "")),
                "fingerspell.git_commit": git_commit(),
            },
        )
        self.parent_id = run.info.run_id
        os.environ[PARENT_RUN_ENV] = self.parent_id  # inherited by joblib workers started after this
        os.environ[SWEEP_KEYS_ENV] = ",".join(swept_keys(config))
        log.info("MLflow sweep parent run %s (%s)", self.parent_id, uri)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self.parent_id is None or self.experiment_id is None:
            return
        os.environ.pop(PARENT_RUN_ENV, None)
        os.environ.pop(SWEEP_KEYS_ENV, None)
        client = MlflowClient(tracking_uri())
        children = client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.mlflow.parentRunId = '{self.parent_id}'",
            max_results=10_000,
        )
        rows = ranking(children)
        table = ranking_markdown(rows)
        client.log_text(self.parent_id, table + "\n", "ranking.md")
        client.set_tag(self.parent_id, RANKING_TAG, table[:5000])
        finished = [row for row in rows if row["status"] == "FINISHED" and not math.isnan(row[RANK_METRIC])]
        if finished:
            best = finished[0]
            client.set_tag(self.parent_id, "fingerspell.best_run_id", best["run_id"])
            client.log_metric(self.parent_id, "best/val_loss", best[RANK_METRIC])
            if self.registered_model_name and best["model_uri"]:
                mlflow.set_tracking_uri(tracking_uri())
                result = register(
                    best["model_uri"],
                    best["run_id"],
                    best[RANK_METRIC],
                    self.registered_model_name,
                    self.champion_alias,
                    self.promote,
                )
                client.set_tag(self.parent_id, "fingerspell.registered_version", result["version"])
        status = "FINISHED" if len(finished) == len(rows) and rows else "FAILED"
        client.set_terminated(self.parent_id, status)
        print(  # noqa: T201 (CLI output: the ranking closes the sweep)
            f"\nSweep {self.parent_id}: {len(finished)}/{len(rows)} jobs finished, ranked by {RANK_METRIC}\n{table}"
        )
