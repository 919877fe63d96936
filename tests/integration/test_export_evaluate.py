"""The evaluate stage on the session's exported model: metrics, speed fields, confusion data, robustness."""

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fingerspell.data.processed import load_split
from fingerspell.evaluation.stage import EvaluateSettings, run_evaluate
from fingerspell.inference.predictor import OnnxPredictor

pytestmark = pytest.mark.slow


def evaluate_settings(model: Path, processed_dir: Path, out: Path, **speed: Any) -> EvaluateSettings:
    """Every report under `out`; `speed` sets the (shortened) timing runs and the corruptions."""
    return EvaluateSettings(
        model=model,
        processed_dir=processed_dir,
        eval_report=out / "eval.json",
        predictions=out / "eval_predictions.csv",
        robustness_report=out / "robustness.json",
        robustness_plot=out / "robustness.png",
        metrics=out / "eval_metrics.json",
        **speed,
    )


def test_evaluate_writes_every_report(trained_onnx: Path, processed_dir: Path, tmp_path: Path) -> None:
    settings = evaluate_settings(
        trained_onnx,
        processed_dir,
        tmp_path,
        latency_runs=50,
        throughput_runs=3,
        corruptions=("blur", "occlusion"),
    )
    report = run_evaluate(settings)
    assert json.loads(settings.eval_report.read_text()) == report

    images, labels = load_split(processed_dir, "test")
    predicted = OnnxPredictor(trained_onnx).predict_proba(images).argmax(1)
    assert report["test/acc"] == pytest.approx(float(np.mean(predicted == labels) * 100), abs=1e-3)
    assert report["test/samples"] == 7172
    assert 0 < report["test/f1_macro"] <= 100
    assert len(report["test/per_class_acc"]) == 24
    for key in ("latency/batch1_p50_ms", "latency/batch1_p99_ms", "throughput/batch256_images_per_s"):
        assert report[key] > 0
    assert report["latency/batch1_p99_ms"] >= report["latency/batch1_p50_ms"]
    # the numbers DVC lists (eval.json also names the model, its run and the data)
    metrics = json.loads(settings.metrics.read_text())
    robust = json.loads(settings.robustness_report.read_text())
    numbers = [
        "test/acc",
        "test/f1_macro",
        "test/samples",
        "latency/batch1_p50_ms",
        "latency/batch1_p99_ms",
        "throughput/batch256_images_per_s",
    ]
    assert metrics == {key: report[key] for key in numbers} | {
        "clean/acc": robust["clean/acc"],
        "corrupted/mean_acc": robust["corrupted/mean_acc"],
    }

    with settings.predictions.open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 7172
    assert set(rows[0]) == {"actual", "predicted"}
    assert sum(r["actual"] == r["predicted"] for r in rows) / 7172 * 100 == pytest.approx(
        report["test/acc"], abs=1e-3
    )

    robust = json.loads(settings.robustness_report.read_text())
    assert robust["clean/acc"] == report["test/acc"]
    assert set(robust["corruptions"]) == {"blur", "occlusion"}
    assert robust["corruptions"]["blur"]["3"] < robust["clean/acc"]
    assert settings.robustness_plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_failure_before_the_end_leaves_the_last_reports_whole(
    trained_onnx: Path, processed_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every number is computed before any file is replaced: no new eval.json beside an old robustness.json."""
    from fingerspell.evaluation import stage

    settings = evaluate_settings(
        trained_onnx, processed_dir, tmp_path, latency_runs=5, throughput_runs=1, corruptions=("blur",)
    )
    old = {path: f"last run's {path.name}" for path in (settings.eval_report, settings.predictions)}
    for path, text in old.items():
        path.write_text(text)

    def robustness_fails(*args: object, **kwargs: object) -> None:
        raise MemoryError("out of memory in the robustness pass")

    monkeypatch.setattr(stage, "robustness_report", robustness_fails)
    with pytest.raises(MemoryError):
        run_evaluate(settings)
    assert {path: path.read_text() for path in old} == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["eval.json", "eval_predictions.csv"], (
        "no temp files"
    )
