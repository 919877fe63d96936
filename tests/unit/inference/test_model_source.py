"""`models:/` and `runs:/` model URIs read the project's MLflow store, wherever the command runs."""

from pathlib import Path

import mlflow
import pytest

from fingerspell.inference.model_source import resolve_model_path
from fingerspell.inference.predictor import ModelError
from fingerspell.tracking.onnx_logging import log_onnx_model


@pytest.fixture
def project(tmp_path: Path, tiny_onnx: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str]:
    """A project folder (dvc.yaml, mlflow.db) with one run that logged and registered the model, as export does."""
    root = tmp_path / "project"
    root.mkdir()
    (root / "dvc.yaml").write_text("stages: {}\n")
    monkeypatch.chdir(root)
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    with mlflow.start_run() as run:
        pass
    log_onnx_model(tiny_onnx, run.info.run_id, f"sqlite:///{root / 'mlflow.db'}", "tiny-onnx", ("champion",))
    mlflow.set_tracking_uri(None)  # type: ignore[arg-type]
    mlflow.set_registry_uri(None)  # type: ignore[arg-type]
    monkeypatch.delenv(
        "MLFLOW_TRACKING_URI", raising=False
    )  # as a user's shell: no variable, the project's store
    return root, run.info.run_id


@pytest.mark.parametrize("uri", ["runs:/{run_id}/onnx", "models:/tiny-onnx@champion", "models:/tiny-onnx/1"])
def test_model_uris_resolve_from_a_subfolder_of_the_project(
    project: tuple[Path, str], tiny_onnx: Path, monkeypatch: pytest.MonkeyPatch, uri: str
) -> None:
    root, run_id = project
    (root / "docs").mkdir()
    monkeypatch.chdir(root / "docs")
    local = resolve_model_path(uri.format(run_id=run_id))
    assert local.suffix == ".onnx"
    assert local.read_bytes() == tiny_onnx.read_bytes()
    assert not (root / "docs" / "mlflow.db").exists(), "MLflow's default ./mlflow.db was not used"


def test_no_store_is_one_line_and_creates_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "dvc.yaml").write_text("stages: {}\n")
    monkeypatch.chdir(elsewhere)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(ModelError) as err:
        resolve_model_path("models:/fingerspell-onnx@champion")
    assert str(err.value) == (
        f"models:/fingerspell-onnx@champion: no MLflow store at {elsewhere / 'mlflow.db'}; run from the"
        " project folder or set MLFLOW_TRACKING_URI"
    )
    assert [p.name for p in elsewhere.iterdir()] == ["dvc.yaml"]
