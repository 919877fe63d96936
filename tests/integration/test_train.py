"""`train(cfg)` on a small real data subset, with a real MLflow sqlite store in tmp."""

import json
import re
from pathlib import Path

import mlflow
import pytest
import torch
from hydra.core.hydra_config import HydraConfig
from mlflow import MlflowClient
from omegaconf import DictConfig, open_dict

from fingerspell.configs import CONFIG_DIR
from fingerspell.data.errors import DataError
from fingerspell.models.module import FingerspellModule
from fingerspell.tracking.setup import tracking_uri
from fingerspell.train import train
from fingerspell.training.checks import check_config, check_resume
from tests.fixtures.train import compose_train, tmp_paths


def runs() -> list[mlflow.entities.Run]:
    client = MlflowClient(tracking_uri())  # the test's private store (env), not a URI set by an earlier test
    exp = client.get_experiment_by_name("fingerspell")
    return client.search_runs([exp.experiment_id]) if exp else []


@pytest.mark.slow
def test_a_run_records_everything_in_mlflow(
    train_cfg: DictConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DVC_EXP_NAME", raising=False)  # under `dvc exp run` the run takes its name
    metrics = train(train_cfg)
    assert 0 <= metrics["test/acc"] <= 1
    assert metrics["val/loss_best"] > 0

    record = json.loads((tmp_path / "models" / "train_run.json").read_text())
    assert record["best_checkpoint"].endswith("checkpoints/best.ckpt")
    assert record["test/acc"] == metrics["test/acc"]
    (run,) = runs()
    assert record["run_id"] == run.info.run_id
    assert run.info.status == "FINISHED"
    # named by its start time: MLflow's random names repeat once the seed has seeded `random`
    assert re.fullmatch(r"train-\d{8}-\d{6}", run.info.run_name), run.info.run_name
    assert run.data.params["optimizer.lr"] == str(train_cfg.optimizer.lr)
    assert {"train/loss", "val/loss", "val/acc", "test/acc", "test/f1", "test/nll"} <= set(run.data.metrics)
    assert run.data.tags["fingerspell.data_fingerprint"] == train_cfg.data.fingerprint
    assert run.data.tags["fingerspell.git_commit"]
    client = MlflowClient(tracking_uri())
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "reports")}
    assert {
        "reports/confusion_matrix.png",
        "reports/confusion_matrix.csv",
        "reports/misclassified.png",
        "reports/train_curves.png",
        "reports/per_class_accuracy.json",
    } <= artifacts
    assert "config.yaml" in {a.path for a in client.list_artifacts(run.info.run_id)}

    # the registered champion and the checkpoint are the same model
    champion = mlflow.pytorch.load_model("models:/fingerspell@champion")
    champion.eval()
    best = FingerspellModule.load_from_checkpoint(record["best_checkpoint"], map_location="cpu").eval()
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(champion(x), best(x), atol=1e-5)

    reports = tmp_path / "reports"
    dvc_metrics = json.loads((reports / "train_metrics.json").read_text())
    assert dvc_metrics["test/acc"] == pytest.approx(metrics["test/acc"])
    rows = (reports / "test_predictions.csv").read_text().splitlines()
    assert rows[0] == "actual,predicted"
    assert len(rows) == 1 + 240


@pytest.mark.slow
def test_same_seed_gives_identical_test_metrics(train_cfg: DictConfig, tmp_path: Path) -> None:
    with open_dict(train_cfg):
        train_cfg.logger = None
        train_cfg.callbacks.lr_monitor = None
    first = train(train_cfg)
    second = train(train_cfg)
    keys = ["test/acc", "test/loss", "val/loss_best"]
    assert {k: first[k] for k in keys} == {k: second[k] for k in keys}
    with open_dict(train_cfg):
        train_cfg.seed = 7
        train_cfg.data.datamodule.seed = 7
    assert train(train_cfg)["test/loss"] != first["test/loss"]


@pytest.mark.slow
def test_a_crash_marks_the_run_failed(train_cfg: DictConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(self: FingerspellModule, batch: object, batch_idx: int) -> None:
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(FingerspellModule, "training_step", boom)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(train_cfg)
    (run,) = runs()
    assert run.info.status == "FAILED"


@pytest.mark.parametrize(
    ("override", "value", "message"),
    [
        ("optimizer.lr", 0.0, "optimizer.lr=0 must be > 0"),
        ("optimizer.lr", -1e-3, "optimizer.lr=-0.001 must be > 0"),
        ("trainer.max_epochs", 0, "trainer.max_epochs=0 must be a whole number >= 1"),
        ("trainer.max_epochs", 1.5, "trainer.max_epochs=1.5 must be a whole number >= 1"),
        ("data.val_fraction", 1.5, "data.val_fraction=1.5 must be between 0 and 1"),
        ("module.label_smoothing", 1.0, "module.label_smoothing=1 must be in [0, 1)"),
        ("module.outlier_exposure", -1.0, "module.outlier_exposure=-1 must be >= 0"),
    ],
)
def test_bad_values_fail_before_training(
    train_cfg: DictConfig, override: str, value: float, message: str
) -> None:
    key, leaf = override.rsplit(".", 1)
    train_cfg[key][leaf] = value
    with pytest.raises(ValueError, match=re.escape(message)):
        check_config(train_cfg)
    with pytest.raises(ValueError):
        train(train_cfg)
    assert runs() == []  # nothing started


def test_missing_or_mismatched_data_fails_before_training(train_cfg: DictConfig, tmp_path: Path) -> None:
    with open_dict(train_cfg):
        train_cfg.data.val_fraction = 0.2
    with pytest.raises(DataError, match=r"split with val_fraction=0\.1"):
        train(train_cfg)
    train_cfg.paths.processed_dir = str(tmp_path / "nowhere")
    with pytest.raises(DataError, match="processed data not found"):
        train(train_cfg)
    assert runs() == []


@pytest.mark.slow
@pytest.mark.parametrize(
    "experiment", sorted(p.stem for p in (Path(CONFIG_DIR) / "experiment").glob("*.yaml"))
)
def test_every_experiment_runs_with_fast_dev_run(
    experiment: str, tiny_processed: Path, tmp_path: Path
) -> None:
    cfg = compose_train(
        [
            f"experiment={experiment}",
            "debug=fast_dev_run",
            "logger=none",
            *tmp_paths(tmp_path, tiny_processed),
        ]
    )
    HydraConfig().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    metrics = train(cfg)
    assert 0 <= metrics["test/acc"] <= 1
    assert (tmp_path / "reports" / "confusion_matrix.png").is_file()


def test_callbacks_none_trains_with_lightnings_own_checkpoint(tiny_processed: Path, tmp_path: Path) -> None:
    """`callbacks=none` (a README option) keeps Lightning's default checkpoint, which ranks nothing:
    no best val/loss to report, and no crash looking for one."""
    from tests.fixtures.train import SHRINK

    shrink = [o for o in SHRINK if not o.startswith(("callbacks.", "logger."))]  # none left to tune
    cfg = compose_train([*shrink, "callbacks=none", "logger=none", *tmp_paths(tmp_path, tiny_processed)])
    HydraConfig().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    metrics = train(cfg)
    assert "val/loss_best" not in metrics
    assert 0 <= metrics["test/acc"] <= 1


def test_the_curves_hold_every_epoch_trained_not_only_up_to_the_best(
    train_cfg: DictConfig, tmp_path: Path
) -> None:
    """Testing reloads the best checkpoint, whose history ends at its own epoch: the curves (DVC
    plot, MLflow artifact) lost the epochs after it, e.g. an early-stopped run's last `patience`."""
    with open_dict(train_cfg):
        train_cfg.trainer.max_epochs = 3
        train_cfg.logger = None
        # "best" is then the epoch of the highest val/loss: an early one, so the history behind it is short
        train_cfg.callbacks.model_checkpoint.mode = "max"
    metrics = train(train_cfg)
    best = torch.load(
        tmp_path / "models" / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=False
    )
    assert best["epoch"] < 2, "the best checkpoint must come before the last epoch for this test"
    assert metrics["epochs"] == 3
    rows = (tmp_path / "reports" / "train_curves.csv").read_text().splitlines()
    assert len(rows) == 1 + 3, rows


def test_resuming_with_another_network_is_refused_before_the_run_is_reopened(train_cfg: DictConfig) -> None:
    """The weights only fit the network they came from; Lightning's size-mismatch traceback came
    after the finished (and registered) run had been reopened and marked FAILED."""
    train(train_cfg)
    with open_dict(train_cfg):
        train_cfg.ckpt_path = "last"
        train_cfg.model.widths = [8, 16, 32]
    message = "holds weights of another network (model.widths=[16, 32, 64] -> [8, 16, 32])"
    with pytest.raises(ValueError, match=re.escape(message)):
        train(train_cfg)
    (run,) = runs()
    assert run.info.status == "FINISHED"
    last = str(Path(train_cfg.paths.checkpoints_dir) / "last.ckpt")
    with open_dict(train_cfg):
        train_cfg.model.widths = [16, 32, 64]
        train_cfg.model.drop_rate = 0.1
    check_resume(last, train_cfg)  # the same shapes resume, even with another dropout rate


def test_no_epoch_limit_needs_a_step_limit_for_a_sized_schedule(train_cfg: DictConfig) -> None:
    with open_dict(train_cfg):
        train_cfg.trainer.max_epochs = -1
    with pytest.raises(ValueError, match=re.escape("cannot size the OneCycleLR schedule")):
        check_config(train_cfg)
    with open_dict(train_cfg):
        train_cfg.trainer.max_steps = 3
    check_config(train_cfg)  # Lightning sizes the schedule from max_steps
