"""The export stage: source -> checked ONNX -> int8 copy -> `reports/export.json` -> MLflow."""

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from torch import nn

from fingerspell.atomic import temp_beside, write_json
from fingerspell.data.processed import load_meta, load_split
from fingerspell.evaluation.timing import throughput
from fingerspell.export.calibration import CalibrationSettings, calibrate
from fingerspell.export.metadata import build_metadata
from fingerspell.export.onnx_export import export_onnx
from fingerspell.export.parity import check_parity
from fingerspell.export.quantize import calibration_sample, quantize_int8
from fingerspell.export.source import SourceModel, load_source
from fingerspell.export.wrapper import OnnxWrapper, image_statistics
from fingerspell.inference.predictor import OnnxPredictor
from fingerspell.inference.reading import LUMA, GreyWeights, parse_dim_background, parse_grey_weights

log = logging.getLogger(__name__)
MIN_OPSET = 18  # torch.onnx's dynamo exporter writes 18 and up


@dataclass(frozen=True)
class QuantizeSettings:
    """Static int8 quantisation: on or off, calibration sample, acceptance limit."""

    enabled: bool = True
    calibration_samples: int = 1024
    seed: int = 0
    per_channel: bool = True
    op_types: tuple[str, ...] = ("Conv", "Gemm", "MatMul", "Relu", "MaxPool", "Add", "Reshape", "Flatten")
    reduce_range: bool = True
    max_accuracy_drop: float = 0.1  # percentage points of test accuracy
    speed_runs: int = 20

    def __post_init__(self) -> None:
        """Refuse values that would fail only after the export and parity check (~30 s in)."""
        if self.calibration_samples < 1:
            raise ValueError(f"quantize.calibration_samples={self.calibration_samples} must be >= 1")
        if self.speed_runs < 1:
            raise ValueError(f"quantize.speed_runs={self.speed_runs} must be >= 1")
        if not self.max_accuracy_drop >= 0:  # NaN too: it would switch the check off
            raise ValueError(f"quantize.max_accuracy_drop={self.max_accuracy_drop:g} must be >= 0 (points)")


@dataclass(frozen=True)
class ExportSettings:
    """Everything `run_export` needs; the Hydra entry point fills it from `conf/export.yaml`."""

    source: str
    processed_dir: Path
    output: Path
    int8_output: Path
    report: Path
    metrics: Path | None = None  # the report's headline numbers, for `dvc metrics show`/`dvc exp show`
    train_run: Path | None = None
    opset: int = 18
    parity_atol: float = 1e-4
    quantize: QuantizeSettings = field(default_factory=QuantizeSettings)
    log_mlflow: bool = True
    registered_name: str | None = "fingerspell-onnx"
    calibration: CalibrationSettings = field(default_factory=lambda: CalibrationSettings(enabled=False))
    calibration_augment: nn.Module | None = None  # what held-out images go through before fitting T
    standardise_input: bool = False  # give each input the train images' typical grey mean and spread
    grey_weights: GreyWeights = LUMA  # how readers turn a colour photo into the grey input
    dim_background: float = 0.0  # how far readers flatten the room around a found hand

    def __post_init__(self) -> None:
        """Refuse an opset the exporter cannot write (it would fall back and mislabel the model)."""
        newest = onnx.defs.onnx_opset_version()
        if not MIN_OPSET <= self.opset <= newest:
            raise ValueError(
                f"opset={self.opset} must be in {MIN_OPSET}-{newest} (the exporter writes opset 18+)"
            )
        if not self.parity_atol > 0:
            raise ValueError(f"parity.atol={self.parity_atol:g} must be > 0 (max |p_onnx - p_torch|)")
        try:  # checked before the export, not by the predictor that reads the written file
            parse_grey_weights(self.grey_weights)
        except ValueError as err:
            raise ValueError(f"grey_weights={err}") from err
        try:
            parse_dim_background(self.dim_background)
        except ValueError as err:
            raise ValueError(f"dim_background={err}") from err


class ParityError(ValueError):
    """The ONNX graph does not compute what PyTorch computes; the model is not written."""


def _accuracy(predictor: OnnxPredictor, images: np.ndarray, labels: np.ndarray) -> float:
    probs = predictor.predict_proba(images, batch_size=512)
    return float(np.mean(probs.argmax(axis=1) == labels) * 100.0)


def _speed(predictor: OnnxPredictor, images: np.ndarray, runs: int) -> float:
    fn = lambda x: predictor.session.run(["probabilities"], {predictor.input_name: x})  # noqa: E731
    return round(throughput(fn, images[:256].astype(np.float32), 256, runs)["images_per_s"], 1)


def _calibrate(
    wrapper: OnnxWrapper, settings: ExportSettings, test: tuple[np.ndarray, np.ndarray]
) -> dict[str, Any] | None:
    """Fit the temperature, class bias and threshold on the validation split (held out from the train CSV)."""
    if not settings.calibration.enabled:
        return None
    held_out = load_split(settings.processed_dir, "val")
    result = calibrate(wrapper, held_out, test, settings.calibration_augment, settings.calibration)
    log.info(
        "calibration: T=%s, class bias %s, unsure below %.2f (%s)",
        result["temperature"] or "1 (not fitted)",
        "fitted" if result["class_bias"] else "off",
        result["unsure_threshold"],
        result["fitted_on"],
    )
    before, after = 100 * result["test"]["accuracy_before"], 100 * result["test"]["accuracy"]
    if before - after > settings.calibration.max_accuracy_drop:  # only the class bias moves answers
        raise ValueError(
            f"the class bias costs the test split {before - after:.2f} points ({before:.2f}% -> {after:.2f}%, "
            f"limit calibration.max_accuracy_drop={settings.calibration.max_accuracy_drop:g}); it suits models "
            "trained for photos (experiment=real_hands): set calibration.class_bias=false for this one"
        )
    return result


def _export_checked(
    model: SourceModel, settings: ExportSettings, test: tuple[np.ndarray, np.ndarray]
) -> dict:
    """Calibrate, export to a temp file, check parity over the whole test split, then move it into place."""
    standardised = None
    if settings.standardise_input:
        standardised = image_statistics(load_split(settings.processed_dir, "train")[0])
        log.info("inputs standardised to grey mean %.1f, spread %.1f (the train split's)", *standardised)
    wrapper = OnnxWrapper(model.net, model.mean, model.std, standardised).eval()
    calibration = _calibrate(wrapper, settings, test)
    meta = build_metadata(
        model.letters,
        model.mean,
        model.std,
        model.run_id,
        model.data_fingerprint,
        settings.opset,
        temperature=calibration["temperature"] if calibration else None,
        unsure_threshold=calibration["unsure_threshold"] if calibration else None,
        class_bias=calibration["class_bias"] if calibration else None,
        standardised=standardised,
        grey_weights=settings.grey_weights,
        dim_background=settings.dim_background,
    )
    out = Path(settings.output)
    tmp = temp_beside(out, suffix=".onnx")
    try:
        export_onnx(wrapper, tmp, meta, settings.opset)
        parity = check_parity(wrapper, OnnxPredictor(tmp), test[0], settings.parity_atol)
        if not parity.passed:
            raise ParityError(
                f"ONNX and PyTorch disagree on the test split (argmax agreement {parity.argmax_agreement:.4%}, "
                f"max |dp| {parity.max_abs_prob_diff:.2e} > {settings.parity_atol:g}); model not written"
            )
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    standard = (
        None
        if standardised is None
        else {"mean": round(standardised[0], 3), "std": round(standardised[1], 3)}
    )
    return {
        "parity": parity.to_dict(),
        "metadata": meta,
        "calibration": calibration,
        "standardised_input": standard,
        "grey_weights": list(settings.grey_weights),
        "dim_background": settings.dim_background,
    }


def _quantize(settings: ExportSettings, fp32: OnnxPredictor, test: tuple[np.ndarray, np.ndarray]) -> dict:
    """Quantise, measure accuracy/size/speed against fp32, keep the file only if accurate enough."""
    q = settings.quantize
    train_images, _ = load_split(settings.processed_dir, "train")
    calib = calibration_sample(train_images, q.calibration_samples, q.seed)
    out = Path(settings.int8_output)
    tmp = temp_beside(out, suffix=".onnx")  # checked before it takes the name: never an unchecked int8 file
    try:
        quantize_int8(Path(settings.output), tmp, calib, q.op_types, q.per_channel, q.reduce_range)
        int8 = OnnxPredictor(tmp)
        fp32_acc, int8_acc = _accuracy(fp32, *test), _accuracy(int8, *test)
        drop = fp32_acc - int8_acc
        kept = drop <= q.max_accuracy_drop
        int8_speed, fp32_speed = _speed(int8, test[0], q.speed_runs), _speed(fp32, test[0], q.speed_runs)
        result = {
            "kept": kept,
            "path": str(out),
            "calibration_samples": len(calib),
            "test_accuracy": round(int8_acc, 4),
            "accuracy_drop_points": round(drop, 4),
            "max_accuracy_drop_points": q.max_accuracy_drop,
            "size_bytes": tmp.stat().st_size,
            "fp32_size_bytes": Path(settings.output).stat().st_size,
            "images_per_s_batch256": int8_speed,
            "fp32_images_per_s_batch256": fp32_speed,
            "speedup_vs_fp32": round(int8_speed / fp32_speed, 2),
        }
        if kept:
            tmp.replace(out)
        else:
            out.unlink(missing_ok=True)  # the last run's int8 file would pass for this model's
            log.warning("int8 model dropped %.3f points (> %.3f): not kept", drop, q.max_accuracy_drop)
    except BaseException:
        out.unlink(missing_ok=True)  # the last run's int8 file must not pass for this model's
        raise
    finally:
        tmp.unlink(missing_ok=True)
    return result


def run_export(settings: ExportSettings) -> dict[str, Any]:
    """Export, check, quantise, report and log; returns the report written to `settings.report`."""
    data_meta = load_meta(settings.processed_dir)
    test = load_split(settings.processed_dir, "test")
    model = load_source(
        settings.source, settings.train_run, data_meta["letters"], data_meta.get("fingerprint")
    )
    if list(model.letters) != list(data_meta["letters"]):
        raise ValueError(f"{settings.source}: model letters {model.letters} differ from the data's letters")
    report: dict[str, Any] = {
        "source": settings.source,
        "output": str(settings.output),
        "opset": settings.opset,
    }
    report |= _export_checked(model, settings, test)
    fp32 = OnnxPredictor(settings.output)
    report["test_accuracy"] = round(_accuracy(fp32, *test), 4)
    report["size_bytes"] = Path(settings.output).stat().st_size
    report["int8"] = _quantize(settings, fp32, test) if settings.quantize.enabled else {"kept": False}
    report["mlflow"] = _log(settings, model)
    write_json(settings.report, report)
    if settings.metrics is not None:
        write_json(settings.metrics, headline_metrics(report))
    return report


def _percent(fraction: float | None) -> float | None:
    return None if fraction is None else round(100 * fraction, 2)


def headline_metrics(report: dict[str, Any]) -> dict[str, float | None]:
    """The numbers DVC compares across experiments (`reports/export_metrics.json`).

    The full report also holds paths, the ONNX metadata and run ids, which made `dvc metrics
    show` about 150 columns wide.
    """
    metrics = {
        "test_acc": report["test_accuracy"],
        "parity_max_abs_diff": report["parity"]["max_abs_prob_diff"],
        "size_mb": round(report["size_bytes"] / 1e6, 3),
    }
    calibration = report.get("calibration")
    if calibration:
        test = calibration["test"]
        metrics |= {  # percent, like the accuracies beside them (the report keeps fractions)
            "unsure_threshold": calibration["unsure_threshold"],
            "test_answered": _percent(test["coverage_at_threshold"]),
            # None (null) when the threshold leaves nothing answered: a weak or 1-epoch model
            "test_answered_acc": _percent(test["accuracy_at_threshold"]),
            "test_ece": _percent(test["ece_after"]),
        }
    int8 = report["int8"]
    if int8.get("kept"):
        metrics |= {"int8_test_acc": int8["test_accuracy"], "int8_speedup": int8["speedup_vs_fp32"]}
    return metrics


def _log(settings: ExportSettings, model: SourceModel) -> dict[str, Any] | None:
    if not settings.log_mlflow:
        return None
    if not model.run_id:
        log.warning("no training run id for %s: ONNX model not logged to MLflow", settings.source)
        return None
    from fingerspell.tracking.onnx_logging import log_onnx_model

    example = np.zeros((1, 1, 28, 28), np.float32)
    logged = log_onnx_model(
        Path(settings.output),
        model.run_id,
        model.tracking_uri,
        settings.registered_name,
        model.aliases,
        (),
        example,
    )
    return {**logged, "run_id": model.run_id, "aliases": list(model.aliases)}
