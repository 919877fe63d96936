"""The export stage on a real (briefly) trained model: parity, metadata, int8, MLflow sources and logging."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from fingerspell.data.processed import load_meta, load_split
from fingerspell.inference.predictor import OnnxPredictor
from tests.fixtures.models import ExportedModel

pytestmark = pytest.mark.slow


def test_export_passes_parity_over_the_whole_test_split(exported_model: ExportedModel) -> None:
    parity = exported_model.report["parity"]
    assert parity["samples"] == 7172
    assert parity["argmax_agreement"] == 1.0
    assert parity["max_abs_prob_diff"] <= 1e-4
    assert parity["passed"] is True
    assert json.loads((exported_model.onnx.parent / "export.json").read_text())["parity"] == parity


def test_export_metrics_hold_the_reports_numbers_only(exported_model: ExportedModel) -> None:
    """What `dvc metrics show` and `dvc exp show` list: no paths, metadata or run ids."""
    report = exported_model.report
    metrics = json.loads((exported_model.onnx.parent / "export_metrics.json").read_text())
    assert all(isinstance(v, int | float) and not isinstance(v, bool) for v in metrics.values())
    assert metrics["test_acc"] == report["test_accuracy"]
    assert metrics["parity_max_abs_diff"] == report["parity"]["max_abs_prob_diff"]
    assert metrics["size_mb"] == pytest.approx(exported_model.onnx.stat().st_size / 1e6, abs=1e-3)
    if report["int8"]["kept"]:
        assert metrics["int8_test_acc"] == report["int8"]["test_accuracy"]
        assert metrics["int8_speedup"] == report["int8"]["speedup_vs_fp32"]
    if report.get("calibration"):
        assert metrics["unsure_threshold"] == report["calibration"]["unsure_threshold"]
        test = report["calibration"]["test"]
        assert metrics["test_answered"] == pytest.approx(100 * test["coverage_at_threshold"], abs=0.01)
        assert metrics["test_ece"] == pytest.approx(100 * test["ece_after"], abs=0.01)


def test_metadata_round_trip(exported_model: ExportedModel, processed_dir: Path) -> None:
    meta = load_meta(processed_dir)
    model = onnx.load(str(exported_model.onnx))
    onnx.checker.check_model(model, full_check=True)
    props = {p.key: p.value for p in model.metadata_props}
    assert json.loads(props["fingerspell.letters"]) == meta["letters"]
    assert json.loads(props["fingerspell.input"])["shape"] == [None, 1, 28, 28]
    assert json.loads(props["fingerspell.input"])["range"] == [0, 255]
    norm = json.loads(props["fingerspell.normalization"])
    assert norm["mean"] == pytest.approx(meta["normalization"]["mean"])
    assert norm["std"] == pytest.approx(meta["normalization"]["std"])
    assert props["fingerspell.data_fingerprint"] == meta["fingerprint"]
    assert props["fingerspell.opset"] == str(model.opset_import[0].version) == "18"
    predictor = OnnxPredictor(exported_model.onnx)
    assert predictor.letters == tuple(meta["letters"])
    assert predictor.metadata.data_fingerprint == meta["fingerprint"]


def test_model_reads_the_test_split(exported_model: ExportedModel) -> None:
    # 300 steps of a small CNN: far from the final model, far above chance (4.2%)
    assert exported_model.report["test_accuracy"] > 80.0


def test_int8_model_keeps_accuracy(exported_model: ExportedModel, processed_dir: Path) -> None:
    int8 = exported_model.report["int8"]
    assert int8["kept"] is True
    assert exported_model.int8.is_file()
    assert int8["size_bytes"] < int8["fp32_size_bytes"]
    assert int8["accuracy_drop_points"] <= 0.1
    # recomputed here, independently of the report
    images, labels = load_split(processed_dir, "test")
    acc = float(np.mean(OnnxPredictor(exported_model.int8).predict_proba(images).argmax(1) == labels) * 100)
    assert acc == pytest.approx(int8["test_accuracy"], abs=1e-3)
    assert exported_model.report["test_accuracy"] - acc <= 0.1
    props = {p.key: p.value for p in onnx.load(str(exported_model.int8)).metadata_props}
    assert "fingerspell.letters" in props
    assert "int8" in props["fingerspell.quantization"]


def _export_cli(tmp: Path, processed: Path, *overrides: str) -> subprocess.CompletedProcess[str]:
    cmd = [
        sys.executable, "-m", "fingerspell.export.cli",
        f"paths.processed_dir={processed}", f"output={tmp / 'model.onnx'}",
        f"int8_output={tmp / 'model.int8.onnx'}", f"report={tmp / 'export.json'}",
        f"train_run={tmp / 'train_run.json'}", f"hydra.run.dir={tmp / 'hydra'}", "quantize.enabled=false",
        *overrides,
    ]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)


def test_export_from_the_registry_champion_predicts_identically(
    exported_model: ExportedModel, processed_dir: Path, tmp_path: Path
) -> None:
    import mlflow
    import torch

    from fingerspell.export.source import load_checkpoint
    from fingerspell.tracking.artifacts import log_torch_model
    from fingerspell.tracking.registry import register

    # what a training job leaves behind: a pytorch-flavour model, registered, holding @champion
    module = load_checkpoint(exported_model.checkpoint)
    images, _ = load_split(processed_dir, "test")
    store = os.environ["MLFLOW_TRACKING_URI"]  # the test's private store (tests/conftest.py)
    mlflow.set_tracking_uri(store)
    mlflow.set_registry_uri(store)
    with mlflow.start_run() as run:
        model_uri = log_torch_model(module.inference_model(), torch.from_numpy(images[:4]).float() / 255)
    registered = register(model_uri, run.info.run_id, 0.5, "fingerspell", "champion", promote=True)
    assert registered["champion"] is True
    client = mlflow.MlflowClient()

    done = _export_cli(tmp_path, processed_dir, "source=models:/fingerspell@champion")
    assert done.returncode == 0, done.stderr[-3000:]

    from_registry = OnnxPredictor(tmp_path / "model.onnx")
    from_checkpoint = OnnxPredictor(exported_model.onnx)
    a, b = from_registry.predict_proba(images), from_checkpoint.predict_proba(images)
    np.testing.assert_array_equal(a.argmax(1), b.argmax(1))
    assert float(np.abs(a - b).max()) <= 1e-5
    assert from_registry.metadata.run_id == run.info.run_id

    # logged back into the source run with the onnx flavour, registered, with the source's alias
    onnx_version = client.get_model_version_by_alias("fingerspell-onnx", "champion")
    assert onnx_version.run_id == run.info.run_id
    logged = mlflow.pyfunc.load_model("models:/fingerspell-onnx@champion")
    assert "onnx" in logged.metadata.flavors
    report = json.loads((tmp_path / "export.json").read_text())
    assert report["mlflow"]["version"] == str(onnx_version.version)


def test_unknown_registry_source_is_one_line(processed_dir: Path, tmp_path: Path) -> None:
    done = _export_cli(tmp_path, processed_dir, "source=models:/no-such-model@champion")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    line = [ln for ln in done.stderr.splitlines() if ln.startswith("fingerspell-export: error:")]
    assert len(line) == 1
    assert "models:/no-such-model@champion" in line[0]
    assert not (tmp_path / "model.onnx").exists()


def test_missing_checkpoint_is_one_line(processed_dir: Path, tmp_path: Path) -> None:
    done = _export_cli(tmp_path, processed_dir, f"source={tmp_path / 'none.ckpt'}")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "checkpoint not found" in done.stderr


def test_default_source_logs_into_the_training_run_and_copies_its_alias(
    exported_model: ExportedModel, processed_dir: Path, tmp_path: Path
) -> None:
    """The DVC path: best.ckpt + models/train_run.json -> the ONNX model lands in that training run."""
    import mlflow
    import mlflow.onnx

    from fingerspell.export.source import load_source
    from fingerspell.tracking.onnx_logging import log_onnx_model

    store = os.environ["MLFLOW_TRACKING_URI"]
    mlflow.set_tracking_uri(store)
    mlflow.set_registry_uri(store)
    with mlflow.start_run() as run:
        mlflow.log_dict({"note": "stand-in for a training job's model"}, "model/placeholder.json")
    client = mlflow.MlflowClient()
    client.create_registered_model("fingerspell-torch")
    version = client.create_model_version(
        "fingerspell-torch", f"runs:/{run.info.run_id}/model", run.info.run_id
    )
    client.set_registered_model_alias("fingerspell-torch", "staging", version.version)
    train_run = tmp_path / "train_run.json"
    train_run.write_text(json.dumps({"run_id": run.info.run_id, "tracking_uri": mlflow.get_tracking_uri()}))

    meta = load_meta(processed_dir)
    source = load_source(str(exported_model.checkpoint), train_run, meta["letters"], meta["fingerprint"])
    assert source.run_id == run.info.run_id
    assert source.aliases == ("staging",)

    logged = log_onnx_model(
        exported_model.onnx, source.run_id, source.tracking_uri, "fingerspell-onnx-test", source.aliases,
        example=np.zeros((1, 1, 28, 28), np.float32),
    )  # fmt: skip
    onnx_version = client.get_model_version_by_alias("fingerspell-onnx-test", "staging")
    assert str(onnx_version.version) == logged["version"]
    assert onnx_version.run_id == run.info.run_id
    reloaded = mlflow.onnx.load_model(logged["model_uri"])
    assert {p.key for p in reloaded.metadata_props} >= {"fingerspell.letters", "fingerspell.run_id"}


@pytest.mark.parametrize("fault", ["drops accuracy", "crashes mid-check"])
def test_an_int8_model_that_fails_never_takes_the_name(
    exported_model: ExportedModel,
    processed_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fault: str,
) -> None:
    """The last run's int8 file goes when this model's is not kept or the check crashes; no unchecked file."""
    from fingerspell.export import stage
    from fingerspell.export.stage import ExportSettings, QuantizeSettings

    out = tmp_path / "model.int8.onnx"
    out.write_bytes(b"last run's int8 model")
    settings = ExportSettings(
        source="unused",
        processed_dir=processed_dir,
        output=exported_model.onnx,
        int8_output=out,
        report=tmp_path / "export.json",
        quantize=QuantizeSettings(calibration_samples=64, speed_runs=1, max_accuracy_drop=0.0),
    )
    test = load_split(processed_dir, "test")
    fp32 = OnnxPredictor(exported_model.onnx)
    if fault == "drops accuracy":
        real_accuracy = stage._accuracy
        monkeypatch.setattr(stage, "_accuracy", lambda p, *t: real_accuracy(p, *t) - (p is not fp32))
        result = stage._quantize(settings, fp32, test)
        assert result["kept"] is False
        assert result["accuracy_drop_points"] == pytest.approx(1.0, abs=0.2)
    else:

        def crash(*args: object) -> float:
            raise MemoryError("out of memory")

        monkeypatch.setattr(stage, "_accuracy", crash)
        with pytest.raises(MemoryError):
            stage._quantize(settings, fp32, (test[0][:256], test[1][:256]))
    assert list(tmp_path.iterdir()) == [], "no int8 file under its name (not the last run's), no temp file"
