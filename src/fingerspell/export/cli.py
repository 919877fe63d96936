"""`fingerspell-export`: the DVC export stage (best checkpoint or MLflow model -> ONNX + int8).

Lives in the package (not `fingerspell/export.py`), since a module and a package cannot share
the name `fingerspell.export`.
"""

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from fingerspell.cli_errors import user_errors
from fingerspell.configs import CONFIG_DIR, setting
from fingerspell.export.calibration import CalibrationSettings
from fingerspell.export.stage import ExportSettings, QuantizeSettings, run_export
from fingerspell.hydra_cli import run_hydra
from fingerspell.inference.reading import LUMA, parse_dim_background, parse_grey_weights

log = logging.getLogger(__name__)
COMMAND = "fingerspell-export"
T = TypeVar("T")


def _checked(cfg: DictConfig, key: str, parse: Callable[[object], T], default: T) -> T:
    """`key` as `parse` reads it (null: `default`), or one line naming the key and the value as typed."""
    value = OmegaConf.select(cfg, key, default=None)
    if value is None:
        return default
    try:
        return parse(OmegaConf.to_object(value) if OmegaConf.is_config(value) else value)
    except ValueError as err:
        raise ValueError(f"{key}={err}") from err


def settings_from_config(cfg: DictConfig) -> ExportSettings:
    """`conf/export.yaml` -> typed settings; a value of the wrong type is one line naming its key."""
    c = cfg.get("calibration") or {}
    calibration = CalibrationSettings(
        enabled=setting(cfg, "calibration.enabled", bool, False),
        temperature=setting(cfg, "calibration.temperature", bool, False),
        class_bias=setting(cfg, "calibration.class_bias", bool, False),
        repeats=setting(cfg, "calibration.repeats", int, 2),
        seed=setting(cfg, "calibration.seed", int, 0),
        target_accuracy=setting(cfg, "calibration.target_accuracy", float, 0.9),
        threshold=setting(cfg, "calibration.threshold", float, None),
        batch_size=setting(cfg, "calibration.batch_size", int, 512),
        max_accuracy_drop=setting(cfg, "calibration.max_accuracy_drop", float, 1.0),
    )
    augment = c.get("augment")
    return ExportSettings(
        source=str(cfg.source),
        processed_dir=Path(cfg.paths.processed_dir),
        output=Path(cfg.output),
        int8_output=Path(cfg.int8_output),
        report=Path(cfg.report),
        metrics=Path(cfg.metrics) if cfg.get("metrics") else None,
        train_run=Path(cfg.train_run) if cfg.train_run else None,
        opset=setting(cfg, "opset", int, 18),
        parity_atol=setting(cfg, "parity.atol", float, 1e-4),
        quantize=QuantizeSettings(
            enabled=setting(cfg, "quantize.enabled", bool, True),
            calibration_samples=setting(cfg, "quantize.calibration_samples", int, 1024),
            seed=setting(cfg, "quantize.seed", int, 0),
            per_channel=setting(cfg, "quantize.per_channel", bool, True),
            reduce_range=setting(cfg, "quantize.reduce_range", bool, True),
            op_types=tuple(cfg.quantize.op_types),
            max_accuracy_drop=setting(cfg, "quantize.max_accuracy_drop", float, 0.1),
            speed_runs=setting(cfg, "quantize.speed_runs", int, 20),
        ),
        log_mlflow=setting(cfg, "mlflow.log", bool, True),
        registered_name=cfg.mlflow.registered_name or None,
        calibration=calibration,
        standardise_input=setting(cfg, "standardise_input", bool, False),
        grey_weights=_checked(cfg, "grey_weights", parse_grey_weights, LUMA),
        dim_background=_checked(cfg, "dim_background", parse_dim_background, 0.0),
        calibration_augment=instantiate(augment) if calibration.enabled and augment else None,
    )


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="export")
def _hydra_main(cfg: DictConfig) -> None:
    """Export, check parity, quantise; fail when the int8 model is required but not kept."""
    with user_errors(COMMAND):
        report = run_export(settings_from_config(cfg))
    if report.get("calibration"):
        cal = report["calibration"]
        log.info(
            "calibrated: T=%s, unsure below %.2f; test ECE %.3f -> %.3f",
            cal["temperature"] or "1 (not fitted)",
            cal["unsure_threshold"],
            cal["test"]["ece_before"],
            cal["test"]["ece_after"],
        )
    int8 = report["int8"]
    log.info(
        "wrote %s: test accuracy %.2f%%, parity max |dp| %.1e; int8 %s",
        report["output"],
        report["test_accuracy"],
        report["parity"]["max_abs_prob_diff"],
        "kept" if int8.get("kept") else "not kept",
    )
    if cfg.quantize.enabled and cfg.quantize.required and not int8["kept"]:
        print(  # noqa: T201 - CLI output
            f"{COMMAND}: error: the int8 model loses {int8['accuracy_drop_points']:.2f} points of test accuracy "
            f"(limit {int8['max_accuracy_drop_points']}); not kept. Raise quantize.calibration_samples, "
            "or set quantize.required=false",
            file=sys.stderr,
        )
        sys.exit(1)


def main() -> None:
    """Console entry point of `fingerspell-export`: config faults end in one line too."""
    run_hydra(COMMAND, _hydra_main)


if __name__ == "__main__":
    main()
