"""Every option of every config group composes and instantiates (STYLE.md §13)."""

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from fingerspell.configs import CONFIG_DIR
from tests.fixtures.train import compose_train

CONF = Path(CONFIG_DIR)


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize("name", options("model"))
def test_every_model_builds_a_24_way_net(name: str) -> None:
    cfg = compose_train([f"model={name}"])
    net = instantiate(cfg.model).eval()
    assert net(torch.rand(2, 1, 28, 28)).shape == (2, 24)


@pytest.mark.parametrize("name", options("optimizer"))
def test_every_optimizer_binds_to_parameters(name: str) -> None:
    cfg = compose_train([f"optimizer={name}"])
    opt = instantiate(cfg.optimizer)(params=torch.nn.Linear(2, 2).parameters())
    assert isinstance(opt, torch.optim.Optimizer)


@pytest.mark.parametrize("name", options("scheduler"))
def test_every_scheduler_builds(name: str) -> None:
    cfg = compose_train([f"scheduler={name}"])
    if cfg.scheduler is None:
        return
    opt = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1)
    kwargs = {"total_steps": 10} if "OneCycle" in cfg.scheduler._target_ else {}
    kwargs |= {"T_max": 10} if "Cosine" in cfg.scheduler._target_ else {}
    assert instantiate(cfg.scheduler)(optimizer=opt, **kwargs) is not None


@pytest.mark.parametrize("name", options("trainer"))
def test_every_trainer_config_names_the_lightning_trainer(name: str) -> None:
    cfg = compose_train([f"trainer={name}"])
    assert cfg.trainer._target_ == "lightning.pytorch.Trainer"
    if name == "ddp_cpu":
        assert cfg.trainer.accelerator == "cpu"
        assert cfg.trainer.devices == 2
        assert cfg.trainer.strategy == "ddp"


def test_callbacks_monitor_the_optimized_metric() -> None:
    cfg = compose_train([])
    callbacks = [instantiate(node) for node in cfg.callbacks.values() if node is not None]
    assert len(callbacks) == 4
    assert cfg.callbacks.model_checkpoint.monitor == cfg.callbacks.early_stopping.monitor == "val/loss"


@pytest.mark.parametrize(
    "overrides",
    [[f"experiment={n}"] for n in options("experiment")]
    + [[f"debug={n}"] for n in options("debug")]
    + [["logger=none"], ["callbacks=none"]],
)
def test_presets_compose(overrides: list[str]) -> None:
    cfg = compose_train(overrides)
    assert cfg.model._target_.startswith("fingerspell.models.")


def test_real_hands_preset_trains_the_cnn_under_real_augmentation_with_random_convolutions() -> None:
    cfg = compose_train(["experiment=real_hands"])
    augment = instantiate(cfg.augment)
    assert type(augment).__name__ == "RealAugment"
    assert (augment.p, augment.randconv, augment.randconv_layers) == (0.5, 1.0, 4)
    assert cfg.model._target_.endswith("ClassicCNN")
    assert cfg.trainer.max_epochs == 16


def test_logger_none_drops_tracking_and_the_sweep_callback() -> None:
    cfg = compose_train(["logger=none"])
    assert cfg.logger is None
    assert cfg.callbacks.lr_monitor is None
    assert "mlflow_sweep" not in (cfg.hydra.callbacks or {})


def test_sweep_configs_compose() -> None:
    optuna = compose_train(["hparams_search=optuna", "hparams_search.n_trials=3"])
    assert optuna.hydra.sweeper.n_trials == 3
    assert optuna.hydra.sweeper.direction == "minimize"
    joblib = compose_train(["hydra/launcher=joblib"])
    assert joblib.hydra.launcher.n_jobs == 2
    slurm = compose_train(["hydra/launcher=slurm"])
    assert slurm.hydra.launcher._target_.endswith("SlurmLauncher")


@pytest.mark.parametrize("preset", options("debug"))
def test_debug_presets_leave_the_pipeline_outputs_and_tracking_alone(preset: str) -> None:
    """A debug run writing models/ and reports/ would make DVC see the train stage as changed,
    and a tracked one would add a model version to the registry."""
    cfg = compose_train([f"debug={preset}", "paths.logs_dir=/scratch/logs"])
    assert cfg.paths.models_dir == "/scratch/logs/debug/models"
    assert cfg.paths.checkpoints_dir == "/scratch/logs/debug/models/checkpoints"
    assert cfg.paths.reports_dir == "/scratch/logs/debug/reports"
    assert cfg.paths.processed_dir == compose_train([]).paths.processed_dir  # reads the real data
    assert not cfg.get("logger")
    # asking for tracking on the command line still gets it
    assert compose_train([f"debug={preset}", "logger=mlflow"]).logger.mlflow.experiment_name == "fingerspell"
