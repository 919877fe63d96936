import re
import socket
import time
from pathlib import Path

import pytest

from fingerspell.tracking.runs import SWEEP_KEYS_ENV, flatten, job_run_name
from fingerspell.tracking.setup import TrackingError, check_reachable, repo_root, tracking_uri


def test_tracking_uri_prefers_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000")
    assert tracking_uri() == "http://mlflow.example:5000"


def test_default_store_is_an_absolute_sqlite_file_at_the_repo_root(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert tracking_uri() == f"sqlite:///{tmp_path.resolve()}/mlflow.db"


def test_a_dvc_temp_experiment_logs_to_the_users_store(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    exp = tmp_path / ".dvc" / "tmp" / "exps" / "run" / "abc123"
    exp.mkdir(parents=True)
    (exp / "dvc.yaml").write_text("stages: {}\n")
    monkeypatch.chdir(exp)
    assert repo_root() == tmp_path.resolve()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_server_fails_fast_with_one_line() -> None:
    start = time.perf_counter()
    with pytest.raises(TrackingError, match="unreachable") as err:
        check_reachable(f"http://127.0.0.1:{free_port()}", timeout_s=2)
    assert "\n" not in str(err.value)
    assert time.perf_counter() - start < 10


@pytest.mark.parametrize("uri", ["./mlruns", "file:///tmp/mlruns"])
def test_file_store_is_refused(uri: str) -> None:
    with pytest.raises(TrackingError, match="file store"):
        check_reachable(uri)


@pytest.mark.parametrize("folder", ["plain", "run#1?x%20"])
def test_a_file_that_is_not_sqlite_is_refused_and_nothing_is_created(tmp_path: Path, folder: str) -> None:
    """A corrupt store was sqlalchemy's page-long traceback; '#' or '?' in the path once cut it short."""
    store = tmp_path / folder
    store.mkdir()
    (store / "mlflow.db").write_bytes(bytes(range(256)) * 20)
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(TrackingError, match="is not a database MLflow can open"):
        check_reachable(f"sqlite:///{store / 'mlflow.db'}")
    assert sorted(tmp_path.rglob("*")) == before


def test_sqlite_store_in_a_missing_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TrackingError, match="does not exist"):
        check_reachable(f"sqlite:///{tmp_path}/nope/mlflow.db")


def test_flatten_gives_dotted_params() -> None:
    assert flatten({"optimizer": {"lr": 0.001, "betas": [0.9, 0.99]}, "seed": 1}) == {
        "optimizer.lr": "0.001",
        "optimizer.betas": "[0.9, 0.99]",
        "seed": "1",
    }


def test_sweep_jobs_are_named_by_their_swept_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SWEEP_KEYS_ENV, "model,optimizer.lr")
    name = job_run_name(1, ["model=cnn_small", "trainer.max_epochs=1", "optimizer.lr=0.003"])
    assert name == "#1 model=cnn_small optimizer.lr=0.003"


def test_a_single_run_is_named_by_its_start_time_not_by_the_seeded_random_module(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`seed_everything` seeds `random`, which MLflow's name generator draws from: every run of
    one seed was called the same (`capable-auk-759`)."""
    import random

    from omegaconf import OmegaConf

    from fingerspell.train import run_name

    monkeypatch.delenv("DVC_EXP_NAME", raising=False)
    settings = OmegaConf.create({"run_name": None})
    random.seed(42)
    first = run_name(settings)
    assert re.fullmatch(r"train-\d{8}-\d{6}", first), first
    assert run_name(OmegaConf.create({"run_name": "baseline"})) == "baseline"
    monkeypatch.setenv("DVC_EXP_NAME", "runic-sera")  # under `dvc exp run`: that experiment's name
    assert run_name(settings) == "runic-sera"
