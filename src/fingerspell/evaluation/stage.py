"""The evaluate stage: the exported model under onnxruntime on the official test split."""

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fingerspell.atomic import write_json
from fingerspell.data.processed import load_meta, load_split
from fingerspell.evaluation.corruptions import CORRUPTIONS
from fingerspell.evaluation.metrics import classification_metrics
from fingerspell.evaluation.plots import plot_robustness, write_predictions_csv
from fingerspell.evaluation.robustness import robustness_report
from fingerspell.evaluation.timing import latency_ms, throughput
from fingerspell.inference.predictor import OnnxPredictor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluateSettings:
    """What `run_evaluate` reads and writes; filled from `conf/evaluate.yaml`."""

    model: Path
    processed_dir: Path
    eval_report: Path
    predictions: Path
    robustness_report: Path
    robustness_plot: Path
    metrics: Path | None = None  # the headline numbers, for `dvc metrics show`/`dvc exp show`
    threads: int | None = 2
    batch_size: int = 256
    latency_runs: int = 1000
    throughput_batch: int = 256
    throughput_runs: int = 30
    robustness_seed: int = 0
    corruptions: tuple[str, ...] | None = None  # None: all

    def __post_init__(self) -> None:
        """Refuse counts that would fail minutes later with a numpy message (or run nothing)."""
        for key in ("batch_size", "latency_runs", "throughput_batch", "throughput_runs"):
            value = getattr(self, key)
            if value < 1:
                name = f"speed.{key}" if key != "batch_size" else key
                raise ValueError(f"{name}={value} must be a whole number >= 1")
        if self.threads is not None and self.threads < 0:
            raise ValueError(f"threads={self.threads} must be >= 1 (or 0/null for onnxruntime's default)")
        # here, not when the robustness pass reaches a typo after minutes of timing runs
        known = ", ".join(CORRUPTIONS)
        if self.corruptions == ():
            raise ValueError(f"robustness.corruptions is empty; list one or more of {known}")
        for name in self.corruptions or ():
            if name not in CORRUPTIONS:
                raise ValueError(f"robustness.corruptions: unknown corruption {name!r}; choose from {known}")


def run_evaluate(settings: EvaluateSettings) -> dict[str, Any]:
    """Metrics, speed and robustness of `settings.model`; writes every report, returns eval.json's dict."""
    predictor = OnnxPredictor(settings.model, threads=settings.threads)
    meta = load_meta(settings.processed_dir)
    if list(predictor.letters) != list(meta["letters"]):
        raise ValueError(f"{settings.model}: model letters {predictor.letters} differ from the data's")
    images, labels = load_split(settings.processed_dir, "test")

    def proba(x: np.ndarray) -> np.ndarray:
        return predictor.predict_proba(x, batch_size=settings.batch_size)

    predicted = proba(images).argmax(axis=1)
    report = classification_metrics(labels, predicted, predictor.letters)
    sample = images[:512].astype(np.float32)

    def run(x: np.ndarray) -> object:
        return predictor.session.run(["probabilities"], {predictor.input_name: x})

    lat = latency_ms(run, sample, settings.latency_runs)
    thr = throughput(run, sample, settings.throughput_batch, settings.throughput_runs)
    report |= {
        "latency/batch1_p50_ms": round(lat["p50_ms"], 4),
        "latency/batch1_p99_ms": round(lat["p99_ms"], 4),
        f"throughput/batch{settings.throughput_batch}_images_per_s": round(thr["images_per_s"], 1),
        "model": str(settings.model),
        "model_run_id": predictor.metadata.run_id,
        "data_fingerprint": meta.get("fingerprint"),
        "threads": settings.threads,
    }
    names = settings.corruptions or tuple(CORRUPTIONS)
    robust = robustness_report(proba, images, labels, settings.robustness_seed, names)

    # every number first, then the files: a failure while computing leaves the last run's reports whole
    write_predictions_csv(settings.predictions, labels, predicted, predictor.letters)
    write_json(settings.eval_report, report)
    write_json(settings.robustness_report, robust)
    plot_robustness(settings.robustness_plot, robust)
    if settings.metrics is not None:
        # numbers only: eval.json also names the model, its run and the data fingerprint
        headline = {key: value for key, value in report.items() if isinstance(value, int | float)}
        headline.pop("threads", None)
        headline |= {key: robust[key] for key in ("clean/acc", "corrupted/mean_acc")}
        write_json(settings.metrics, headline)
    log.info(
        "test accuracy %.2f%%, macro F1 %.2f%%, corrupted mean %.2f%%",
        report["test/acc"],
        report["test/f1_macro"],
        robust["corrupted/mean_acc"],
    )
    return report
