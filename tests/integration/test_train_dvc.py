"""`dvc exp run -S optimizer.lr=3e-3` through DVC's Hydra composition of conf/, in a throwaway repo copy."""

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from tests.conftest import REPO_ROOT, copy_repo


def sh(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900, check=False)


@pytest.mark.slow
@pytest.mark.e2e
def test_dvc_experiment_trains_with_the_override_and_logs_to_mlflow(
    processed_dir: Path, mirror_zip: Path, tmp_path: Path
) -> None:
    repo = copy_repo(tmp_path / "repo")
    shutil.copytree(processed_dir, repo / "data" / "processed")
    (repo / "data" / "raw").mkdir(parents=True, exist_ok=True)
    shutil.copy2(mirror_zip, repo / "data" / "raw" / "sign-language-mnist.zip")
    shutil.copy2(REPO_ROOT / ".dvc" / "config.local", repo / ".dvc" / "config.local")
    venv_bin = str(Path(sys.executable).parent)
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    env = {**os.environ, "PATH": f"{venv_bin}:{os.environ['PATH']}", "MLFLOW_TRACKING_URI": uri}
    env.pop("MLFLOW_REGISTRY_URI", None)
    for cmd in (
        ["git", "init", "-q"],
        ["git", "add", "-A"],
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "copy"],
    ):
        assert sh(cmd, repo, env).returncode == 0
    dvc = [str(Path(venv_bin) / "dvc")]
    # the copied data/processed must already satisfy the preprocess stage (only train reruns)
    proc = sh(
        [
            *dvc,
            "exp",
            "run",
            "train",  # only up to training: export/evaluate have their own end-to-end tests
            "-S",
            "optimizer.lr=3e-3",
            "-S",
            "trainer.max_epochs=1",
            "-S",
            "+trainer.limit_train_batches=4",
            "-S",
            "callbacks.rich_progress_bar=null",
        ],
        repo,
        env,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "Running stage 'train'" in proc.stdout + proc.stderr
    params = (repo / "params.yaml").read_text()
    assert "lr: 0.003" in params
    metrics = json.loads((repo / "reports" / "train_metrics.json").read_text())
    assert 0 <= metrics["test/acc"] <= 1
    assert (repo / "models" / "checkpoints" / "best.ckpt").is_file()
    record = json.loads((repo / "models" / "train_run.json").read_text())
    run = MlflowClient(uri).get_run(record["run_id"])
    assert run.data.params["optimizer.lr"] == "0.003"
    assert run.info.status == "FINISHED"
    shown = sh([*dvc, "metrics", "show", "--json"], repo, env)
    assert "test/acc" in shown.stdout
    # the experiment's metrics come back from DVC's cache (reports/ is not in git)
    table = sh([*dvc, "exp", "show", "--csv", "--only-changed"], repo, env)
    assert table.returncode == 0, table.stderr
    rows = list(csv.DictReader(io.StringIO(table.stdout)))
    (experiment,) = [row for row in rows if row["Experiment"]]
    (column,) = [name for name in experiment if name.endswith("test/acc")]
    assert float(experiment[column]) == pytest.approx(metrics["test/acc"])
    assert experiment["optimizer.lr"] == "0.003"
    # the MLflow run carries the DVC experiment's name (its -S values reach it through params.yaml)
    assert run.info.run_name == experiment["Experiment"]
    assert run.data.tags["fingerspell.dvc_experiment"] == experiment["Experiment"]
    head = sh(["git", "rev-parse", "HEAD"], repo, env).stdout.strip()  # the experiment's baseline
    assert run.data.tags["fingerspell.dvc_baseline_rev"] == head
    # a refused value fails in one line, after DVC removed the stage's outputs; checkout restores them
    failed = sh([*dvc, "exp", "run", "train", "-S", "data.datamodule.batch_size=0"], repo, env)
    assert failed.returncode != 0
    assert (
        "fingerspell-train: error: data.datamodule.batch_size=0 must be > 0" in failed.stdout + failed.stderr
    )
    assert not (repo / "reports" / "train_metrics.json").exists()
    assert sh(["git", "checkout", "params.yaml"], repo, env).returncode == 0
    restored = sh([*dvc, "checkout", "train"], repo, env)  # export/evaluate never ran here
    assert restored.returncode == 0, restored.stderr
    assert json.loads((repo / "reports" / "train_metrics.json").read_text()) == metrics
    assert json.loads((repo / "models" / "train_run.json").read_text()) == record
    _ = mlflow
