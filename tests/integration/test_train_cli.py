"""`fingerspell-train` as a user runs it: one-line errors, sweeps, DDP, kill and resume."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
import torch
from mlflow import MlflowClient

from fingerspell.train import main
from tests.fixtures.train import cli_args, run_cli

REPO = Path(__file__).resolve().parents[2]


def store(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"


def all_runs(uri: str) -> list[mlflow.entities.Run]:
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("fingerspell")
    return client.search_runs([exp.experiment_id]) if exp else []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["optimizr=adamw"], "no config key 'optimizr' (a typo?"),
        (["model=vgg"], "Could not find 'model/vgg'; Available options in 'model': cnn, cnn_small, resnet"),
        (["optimizer.lr=0"], "optimizer.lr=0 must be > 0"),
        (["trainer.max_epochs=0"], "trainer.max_epochs=0 must be a whole number >= 1"),
        (["data.val_fraction=1.5"], "data.val_fraction=1.5 must be between 0 and 1"),
        (["paths.processed_dir=/nonexistent/processed"], "processed data not found"),
        ([], "is unreachable"),
        (["seed=abc"], "seed='abc' must be a whole number >= 0"),
        (["model.num_classes=10"], "model.num_classes=10 does not match the data's 24 letters"),
        ([f"ckpt_path={REPO / 'README.md'}"], "README.md is not a checkpoint written by fingerspell-train"),
        (["ckpt_path={tmp}/other.zip"], "other.zip is not a checkpoint written by fingerspell-train"),
        (["+trainer.limit_val_batches=0.01"], "limit_val_batches"),
        (["augment=real", "augment.p=2"], "error: augment.p is out of range: 2"),  # not Hydra's wrapper
        (["logger.mlflow.promote=maybe"], "logger.mlflow.promote='maybe' must be true or false"),
        (["trainer.limit_train_batches=0"], "trainer.limit_train_batches=0 trains nothing"),
        (["optimized_metric=val/acc"], "optimized_metric='val/acc': only val/loss is supported"),
        (["train=false"], "train=false tests a trained checkpoint: give ckpt_path=<file>"),
        (["model.image_size=64"], "model.image_size=64 does not match the data's 28 px images"),
        (["data.datamodule.batch_size=30000"], "batch_size=30000 is larger than the 24710 training images"),
        (["trainer.max_epochs=-1"], "trainer.max_epochs=-1 (no limit) cannot size the OneCycleLR schedule"),
        ([], "is not a database MLflow can open"),
        pytest.param(
            ["trainer=gpu"],
            "trainer.accelerator=gpu (trainer=gpu, ddp) needs a CUDA GPU and this machine has none; use"
            " trainer=cpu (or ddp_cpu)",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU"),
        ),
    ],
    ids=[
        "unknown-group",
        "unknown-option",
        "lr",
        "max-epochs",
        "val-fraction",
        "no-data",
        "no-server",
        "seed",
        "num-classes",
        "not-a-checkpoint",
        "zip-not-a-checkpoint",
        "lightning-refusal",
        "augment-value",
        "promote-flag",
        "no-batches",
        "metric-to-maximise",
        "test-only-without-checkpoint",
        "image-size",
        "batch-over-split",
        "endless-one-cycle",
        "corrupt-store",
        "gpu-without-one",
    ],
)
def test_bad_input_is_one_line_and_exit_1(
    tiny_processed: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    expected: str,
) -> None:
    # in-process `main()` (the console script's function): the same code path, without a 10 s start-up
    if expected == "is unreachable":
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    if expected == "is not a database MLflow can open":
        (tmp_path / "bad.db").write_bytes(bytes(range(256)) * 20)  # not SQLite: sqlalchemy's page-long error
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'bad.db'}")
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    if any("other.zip" in e for e in extra):  # a zip archive, but not torch's
        import zipfile

        with zipfile.ZipFile(tmp_path / "other.zip", "w") as archive:
            archive.writestr("notes.txt", "not a model")
    extra = [e.replace("{tmp}", str(tmp_path)) for e in extra]
    monkeypatch.setattr(sys, "argv", ["fingerspell-train", *cli_args(tmp_path, tiny_processed, *extra)])
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err[-2000:]
    assert lines[0].startswith("fingerspell-train: error: ")
    assert expected in lines[0]
    assert not (tmp_path / "models" / "checkpoints" / "last.ckpt").exists()


@pytest.mark.parametrize("fault", ["no-server", "corrupt-store", "test-only-without-checkpoint"])
def test_a_refused_start_keeps_the_last_runs_checkpoints(
    tiny_processed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    """The checkpoints are cleared for a new run only once it can start: a refused one leaves the
    last run's files (and `train_run.json`, which points at them) usable."""
    folder = tmp_path / "models" / "checkpoints"
    folder.mkdir(parents=True)
    for name in ("best.ckpt", "last.ckpt"):
        (folder / name).write_bytes(b"the last run's weights")
    extra = ["train=false"] if fault == "test-only-without-checkpoint" else []
    if fault == "no-server":
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    else:
        (tmp_path / "bad.db").write_bytes(bytes(range(256)) * 20)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'bad.db'}")
    monkeypatch.setattr(sys, "argv", ["fingerspell-train", *cli_args(tmp_path, tiny_processed, *extra)])
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 1
    assert sorted(p.name for p in folder.iterdir()) == ["best.ckpt", "last.ckpt"]


def test_an_optuna_search_of_no_trials_is_refused_before_its_parent_run(
    tiny_processed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    uri = store(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    argv = ["-m", "hparams_search=optuna", "hparams_search.n_trials=0", *cli_args(tmp_path, tiny_processed)]
    monkeypatch.setattr(sys, "argv", ["fingerspell-train", *argv])
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert lines == ["fingerspell-train: error: hparams_search.n_trials=0 must be a whole number >= 1"]
    assert all_runs(uri) == [], "no parent run left FAILED and empty"


@pytest.mark.parametrize(
    ("step", "sweep", "expected"),
    [
        ("training_step", False, "interrupted before the first checkpoint was saved; run it again"),
        ("test_step", False, "interrupted; continue with ckpt_path=last (and the same overrides)"),
        (
            "training_step",
            True,
            "interrupted; the sweep stopped here (finished jobs are in MLflow): run it again",
        ),
    ],
    ids=["during-fit", "during-test", "in-a-sweep"],
)
def test_ctrl_c_ends_the_run_killed_with_one_line(
    tiny_processed: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    step: str,
    sweep: bool,
    expected: str,
) -> None:
    """Lightning turns Ctrl-C into exit 1, which read as a crash: the run was FAILED, not KILLED,
    and the line says how to go on (`ckpt_path=last` only where there is a last.ckpt to continue)."""
    from fingerspell.models.module import FingerspellModule

    uri = store(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")

    def interrupted(self, batch, batch_idx):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt  # as if Ctrl-C came during this step

    monkeypatch.setattr(FingerspellModule, step, interrupted)
    folder = tmp_path / "models" / "checkpoints"
    folder.mkdir(parents=True)
    for name in ("best.ckpt", "last.ckpt"):
        (folder / name).write_bytes(b"the last run's weights")
    args = cli_args(tmp_path, tiny_processed)
    if sweep:
        args = ["-m", *[a for a in args if not a.startswith("optimizer.lr=")], "optimizer.lr=1e-3,2e-3"]
    monkeypatch.setattr(sys, "argv", ["fingerspell-train", *args])
    handler = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(SystemExit) as exit_:
            main()
    finally:
        signal.signal(signal.SIGINT, handler)  # Lightning ignores further Ctrl-C on its way out
    assert exit_.value.code == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"fingerspell-train: error: {expected}"
    runs = {r.data.tags.get("fingerspell.kind", "job"): r for r in all_runs(uri)}
    assert runs["job"].info.status == "KILLED"
    kept = {p.name: p.read_bytes() == b"the last run's weights" for p in folder.iterdir()}
    if step == "training_step" and not sweep:  # nothing saved yet: the last run's checkpoints are back
        assert kept == {"best.ckpt": True, "last.ckpt": True}
    elif not sweep:  # stopped while testing: this run's checkpoints, the old ones gone
        assert kept == {"best.ckpt": False, "last.ckpt": False}
    if sweep:
        assert set(runs) == {"sweep", "job"}, "the sweep stopped at its first job"
        assert runs["sweep"].info.status == "KILLED"


@pytest.mark.slow
def test_console_script_reports_one_line(tiny_processed: Path, tmp_path: Path) -> None:
    proc = run_cli(
        cli_args(tmp_path, tiny_processed, "optimizer.lr=-1"), tmp_path, MLFLOW_TRACKING_URI=store(tmp_path)
    )
    assert proc.returncode == 1
    assert proc.stderr.strip() == "fingerspell-train: error: optimizer.lr=-1 must be > 0"
    assert proc.stdout.strip() == "", "no config tree before a refused value"


@pytest.mark.slow
def test_killed_run_resumes_from_last_and_continues_the_same_mlflow_run(
    tiny_processed: Path, tmp_path: Path
) -> None:
    uri = store(tmp_path)
    args = cli_args(
        tmp_path,
        tiny_processed,
        "trainer.max_epochs=4",
        "+trainer.limit_train_batches=12",
        "logger.mlflow.log_model=false",
        "logger.mlflow.registered_model_name=null",
    )
    args = [a for a in args if not a.startswith("+trainer.limit_train_batches=8")]
    last = tmp_path / "models" / "checkpoints" / "last.ckpt"
    exe = Path(sys.executable).with_name("fingerspell-train")
    proc = subprocess.Popen(
        [str(exe), *args],
        cwd=tmp_path,
        env={**os.environ, "MLFLOW_TRACKING_URI": uri},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 240
        while not last.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert last.exists(), "no last.ckpt while the run was alive"
        assert proc.poll() is None, "no last.ckpt while the run was alive"
        time.sleep(1.0)  # into the next epoch
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    (killed,) = all_runs(uri)
    assert killed.info.status == "RUNNING"  # SIGKILL: nobody could end it

    longer = run_cli([*args, "ckpt_path=last", "trainer.max_epochs=5"], tmp_path, MLFLOW_TRACKING_URI=uri)
    assert longer.returncode == 1
    assert longer.stderr.strip().splitlines() == [
        "fingerspell-train: error: ckpt_path=last resumes a run of trainer.max_epochs=4, this config asks"
        " for 5; resume with trainer.max_epochs=4, or train anew without ckpt_path"
    ]
    assert all_runs(uri)[0].info.status == "RUNNING", "refused before the run it would continue is touched"

    resumed = run_cli([*args, "ckpt_path=last"], tmp_path, MLFLOW_TRACKING_URI=uri)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Restoring states from the checkpoint path" in resumed.stderr + resumed.stdout
    (run,) = all_runs(uri)
    assert run.info.run_id == killed.info.run_id
    assert run.info.status == "FINISHED"
    assert run.data.tags.get("fingerspell.resumed") == "true"
    epochs = [m.step for m in MlflowClient(uri).get_metric_history(run.info.run_id, "epoch")]
    assert max(epochs) > 0
    assert "test/acc" in run.data.metrics
    record = json.loads((tmp_path / "models" / "train_run.json").read_text())
    assert record["run_id"] == run.info.run_id
    assert record["epochs"] == 4


@pytest.mark.slow
def test_joblib_sweep_makes_one_parent_and_a_child_per_job(tiny_processed: Path, tmp_path: Path) -> None:
    uri = store(tmp_path)
    args = [a for a in cli_args(tmp_path, tiny_processed) if not a.startswith("model=")]
    proc = run_cli(
        ["-m", "hydra/launcher=joblib", *args, "model=cnn,cnn_small"],
        tmp_path,
        timeout=600,
        MLFLOW_TRACKING_URI=uri,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "database is locked" not in proc.stderr
    runs = all_runs(uri)
    (parent,) = [r for r in runs if r.data.tags.get("fingerspell.kind") == "sweep"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 2
    assert all(c.info.status == "FINISHED" for c in children)
    assert sorted(c.info.run_name for c in children) == ["#0 model=cnn", "#1 model=cnn_small"]
    assert parent.info.status == "FINISHED"
    assert "| 1 |" in parent.data.tags["fingerspell.ranking"]
    best = min(children, key=lambda r: r.data.metrics["val/loss_best"])
    assert parent.data.tags["fingerspell.best_run_id"] == best.info.run_id
    version = MlflowClient(uri).get_model_version_by_alias("fingerspell", "champion")
    assert version.run_id == best.info.run_id or version.tags["run_id"] == best.info.run_id
    assert all(c.data.params["model._target_"] for c in children)


@pytest.mark.slow
def test_a_refused_sweep_job_fails_alone_and_the_sweep_ends_failed(
    tiny_processed: Path, tmp_path: Path
) -> None:
    """Job #1's value is refused: jobs #0 and #2 still train and are ranked, #1 is listed FAILED
    with its reason, the parent ends FAILED (not RUNNING forever), and the command exits 1."""
    uri = store(tmp_path)
    args = [a for a in cli_args(tmp_path, tiny_processed) if not a.startswith("optimizer.lr=")]
    # a configured run name comes before each job's own: one shared name hid the refused job
    sweep = ["-m", *args, "logger.mlflow.run_name=lr-trial", "optimizer.lr=1e-3,-1,2e-3"]
    proc = run_cli(sweep, tmp_path, timeout=600, MLFLOW_TRACKING_URI=uri)
    assert proc.returncode == 1, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("fingerspell-train: error: ")]
    assert errors == [
        "fingerspell-train: error: optimizer.lr=-1 must be > 0",
        "fingerspell-train: error: 1 sweep job(s) did not finish: lr-trial #1 optimizer.lr=-1",
    ]
    assert "Traceback" not in proc.stderr
    runs = all_runs(uri)
    (parent,) = [r for r in runs if r.data.tags.get("fingerspell.kind") == "sweep"]
    children = {
        r.info.run_name: r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id
    }
    names = [
        "lr-trial #0 optimizer.lr=0.001",
        "lr-trial #1 optimizer.lr=-1",
        "lr-trial #2 optimizer.lr=0.002",
    ]
    assert sorted(children) == names
    refused = children["lr-trial #1 optimizer.lr=-1"]
    assert refused.info.status == "FAILED"
    assert refused.data.tags["fingerspell.error"] == "optimizer.lr=-1 must be > 0"
    ran = [children["lr-trial #0 optimizer.lr=0.001"], children["lr-trial #2 optimizer.lr=0.002"]]
    assert all(r.info.status == "FINISHED" for r in ran)
    assert parent.info.status == "FAILED"
    best = min(ran, key=lambda r: r.data.metrics["val/loss_best"])
    assert parent.data.tags["fingerspell.best_run_id"] == best.info.run_id


@pytest.mark.slow
def test_a_job_refused_in_a_joblib_worker_still_fails_the_command(
    tiny_processed: Path, tmp_path: Path
) -> None:
    """With a parallel launcher the refused job runs in another process, and with `logger=none`
    there is no parent run either: its marker in the job folder is what makes the command exit 1."""
    args = [a for a in cli_args(tmp_path, tiny_processed) if not a.startswith(("optimizer.lr=", "logger."))]
    proc = run_cli(
        ["-m", "hydra/launcher=joblib", *args, "logger=none", "optimizer.lr=1e-3,-1"], tmp_path, timeout=600
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert proc.stderr.splitlines()[-1] == (
        "fingerspell-train: error: 1 sweep job(s) did not finish: #1 optimizer.lr=-1"
    )
    markers = sorted((tmp_path / "logs").glob("train/multiruns/*/*/refused.txt"))
    assert [m.parent.name for m in markers] == ["1"]
    assert markers[0].read_text() == "#1 optimizer.lr=-1\noptimizer.lr=-1 must be > 0\n"


@pytest.mark.slow
def test_an_optuna_search_goes_on_after_a_refused_trial_and_ends_failed(
    tiny_processed: Path, tmp_path: Path
) -> None:
    """Every trial is refused here (a fixed bad value): Optuna still runs both, each is a FAILED
    child with the reason, and with no trial completed the parent ends FAILED (not RUNNING)."""
    uri = store(tmp_path)
    args = [a for a in cli_args(tmp_path, tiny_processed) if not a.startswith("trainer.max_epochs=")]
    proc = run_cli(
        ["-m", "hparams_search=optuna", "hparams_search.n_trials=2", *args, "trainer.max_epochs=1.5"],
        tmp_path,
        timeout=600,
        MLFLOW_TRACKING_URI=uri,
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    reason = "trainer.max_epochs=1.5 must be a whole number >= 1 (or -1 for no limit)"
    errors = [line for line in proc.stderr.splitlines() if line.startswith("fingerspell-train: error: ")]
    assert errors[:2] == [f"fingerspell-train: error: {reason}"] * 2
    runs = all_runs(uri)
    (parent,) = [r for r in runs if r.data.tags.get("fingerspell.kind") == "sweep"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 2
    assert all(c.info.status == "FAILED" and c.data.tags["fingerspell.error"] == reason for c in children)
    assert parent.info.status == "FAILED"


@pytest.mark.slow
def test_a_sweep_stopped_by_a_missing_config_marks_its_parent_failed(
    tiny_processed: Path, tmp_path: Path
) -> None:
    """`model=cnn_small,vgg`: job #1 cannot even be composed, Hydra stops the sweep there; the
    parent run (created before any job) is marked FAILED instead of left RUNNING."""
    uri = store(tmp_path)
    args = [a for a in cli_args(tmp_path, tiny_processed) if not a.startswith("model=")]
    proc = run_cli(["-m", *args, "model=cnn_small,vgg"], tmp_path, timeout=600, MLFLOW_TRACKING_URI=uri)
    assert proc.returncode == 1, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("fingerspell-train: error: ")]
    assert len(errors) == 1
    assert "Could not find 'model/vgg'" in errors[0]
    (parent,) = [r for r in all_runs(uri) if r.data.tags.get("fingerspell.kind") == "sweep"]
    assert parent.info.status == "FAILED"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("srun") is not None, reason="a SLURM cluster: the sweep would be submitted")
def test_slurm_sweep_off_a_cluster_is_one_line(tiny_processed: Path, tmp_path: Path) -> None:
    """The README's SLURM line, run where there is no SLURM: submitit's traceback became one line."""
    uri = store(tmp_path)
    proc = run_cli(
        ["-m", "hydra/launcher=slurm", *cli_args(tmp_path, tiny_processed)], tmp_path, MLFLOW_TRACKING_URI=uri
    )
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("fingerspell-train: error: ")]
    assert "Traceback" not in proc.stderr
    assert errors == [
        "fingerspell-train: error: hydra/launcher=slurm needs a SLURM cluster (no srun here); run it on a"
        " login node, or hydra/launcher=joblib on this machine"
    ]
    (parent,) = all_runs(uri)
    assert parent.info.status == "FAILED"


@pytest.mark.slow
def test_optuna_search_runs_the_requested_trials(tiny_processed: Path, tmp_path: Path) -> None:
    uri = store(tmp_path)
    proc = run_cli(
        [
            "-m",
            "hparams_search=optuna",
            "hparams_search.n_trials=2",
            *cli_args(tmp_path, tiny_processed),
            "logger.mlflow.log_model=false",
        ],
        tmp_path,
        timeout=600,
        MLFLOW_TRACKING_URI=uri,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = all_runs(uri)
    (parent,) = [r for r in runs if r.data.tags.get("fingerspell.kind") == "sweep"]
    assert "OptunaSweeper" in parent.data.tags["fingerspell.sweeper"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 2
    assert len({c.data.params["optimizer.lr"] for c in children}) == 2


@pytest.mark.slow
def test_ddp_cpu_trains_on_two_processes_and_logs_once(tiny_processed: Path, tmp_path: Path) -> None:
    uri = store(tmp_path)
    proc = run_cli(
        ["trainer=ddp_cpu", *cli_args(tmp_path, tiny_processed), "logger.mlflow.log_model=false"],
        tmp_path,
        timeout=600,
        MLFLOW_TRACKING_URI=uri,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = all_runs(uri)
    assert run.info.status == "FINISHED"
    assert run.data.params["trainer.strategy"] == "ddp"
    assert "test/acc" in run.data.metrics
    assert "world_size=2" in proc.stderr + proc.stdout or "GLOBAL_RANK: 1" in proc.stderr + proc.stdout
