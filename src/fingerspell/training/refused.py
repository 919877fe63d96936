"""Sweep jobs refused for their config or data, as the launching process learns of them.

A refused job returns instead of failing, so the other jobs still run, and leaves a marker in
its job folder. The launching process reads the markers when the multirun ends: with a parallel
launcher (joblib, SLURM) the job ran in another process, and nothing else reaches it there.
"""

import os
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from fingerspell.tracking.runs import SWEEP_KEYS_ENV
from fingerspell.tracking.sweep import swept_keys

MARKER = "refused.txt"  # first line: the job's name; then why it was refused
# filled at the end of each multirun in this process; the command's exit code reads it
refused_jobs: list[str] = []


def mark_refused(name: str, message: str) -> None:
    """Leave the marker in this job's output folder."""
    folder = Path(HydraConfig.get().runtime.output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).write_text(f"{name}\n{message}\n")


class RefusedJobsCallback(Callback):
    """Collect the markers of the multirun's jobs into `refused_jobs` (in job order)."""

    def __init__(self) -> None:
        self.sweep_dir: Path | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.sweep_dir = Path(config.hydra.sweep.dir)
        refused_jobs.clear()
        # jobs are named by the values they sweep (`#1 optimizer.lr=-1`), with or without MLflow
        os.environ.setdefault(SWEEP_KEYS_ENV, ",".join(swept_keys(config)))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self.sweep_dir is None:
            return
        markers = sorted(
            self.sweep_dir.glob(f"*/{MARKER}"), key=lambda p: (len(p.parent.name), p.parent.name)
        )
        refused_jobs[:] = [marker.read_text().split("\n", 1)[0] for marker in markers]
