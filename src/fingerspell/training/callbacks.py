"""Lightning callbacks of a training job."""

from typing import Any

import lightning as L
import torch


class RunRecord(L.Callback):
    """Writes the MLflow run (`run_id`, `experiment_id`, `tracking_uri`) into every checkpoint.

    Stored under `fingerspell_run`, so `ckpt_path=last` can continue the same run after a crash.
    """

    KEY = "fingerspell_run"

    def __init__(self, record: dict[str, str]) -> None:
        self.record = dict(record)

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint[self.KEY] = dict(self.record)

    @classmethod
    def read(cls, path: str) -> dict[str, str]:
        """The record of checkpoint `path` (empty when it has none)."""
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
        return dict(checkpoint.get(cls.KEY, {}))
