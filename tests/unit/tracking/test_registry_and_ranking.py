import math

import mlflow
import pytest
import torch
from mlflow import MlflowClient
from mlflow.entities import Run, RunData, RunInfo

from fingerspell.tracking.artifacts import log_torch_model
from fingerspell.tracking.registry import register
from fingerspell.tracking.setup import use_store
from fingerspell.tracking.sweep import ranking, ranking_markdown


def logged_model() -> tuple[str, str]:
    with mlflow.start_run() as run:
        uri = log_torch_model(
            torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 24)), torch.rand(2, 1, 28, 28)
        )
    return uri, run.info.run_id


@pytest.mark.slow
def test_champion_moves_only_to_a_lower_val_loss() -> None:
    use_store()
    client = MlflowClient()
    first = register(*logged_model(), val_loss=0.10, name="fs", alias="champion", promote=True)
    assert first["champion"]
    assert first["version"] == "1"
    worse = register(*logged_model(), val_loss=0.20, name="fs", alias="champion", promote=True)
    assert not worse["champion"]
    assert str(client.get_model_version_by_alias("fs", "champion").version) == "1"
    better = register(*logged_model(), val_loss=0.05, name="fs", alias="champion", promote=True)
    assert better["champion"]
    assert better["previous_champion"] == "1"
    assert str(client.get_model_version_by_alias("fs", "champion").version) == "3"
    model = mlflow.pytorch.load_model("models:/fs@champion")
    assert model(torch.rand(1, 1, 28, 28)).shape == (1, 24)


def test_promotion_can_be_switched_off() -> None:
    use_store()
    result = register(*logged_model(), val_loss=0.01, name="fs2", alias="champion", promote=False)
    assert not result["champion"]
    with pytest.raises(mlflow.exceptions.MlflowException):
        MlflowClient().get_model_version_by_alias("fs2", "champion")


def fake_run(run_id: str, status: str, **metrics: float) -> Run:
    info = RunInfo(run_id, "0", "u", status, 0, 0, "active", run_name=run_id)
    data = RunData(metrics=[mlflow.entities.Metric(k, v, 0, 0) for k, v in metrics.items()])
    return Run(info, data)


def test_ranking_sorts_by_best_val_loss_and_puts_failed_jobs_last() -> None:
    runs = [
        fake_run("b", "FINISHED", **{"val/loss_best": 0.3}),
        fake_run("x", "FAILED"),
        fake_run("a", "FINISHED", **{"val/loss_best": 0.1, "test/acc": 1.0}),
    ]
    rows = ranking(runs)
    assert [r["run_id"] for r in rows] == ["a", "b", "x"]
    assert math.isnan(rows[2]["val/loss_best"])
    table = ranking_markdown(rows).splitlines()
    assert table[0].startswith("| rank | run | val/loss_best")
    assert table[2].startswith("| 1 | a | 0.10000")
