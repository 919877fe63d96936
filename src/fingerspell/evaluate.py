"""`fingerspell-evaluate`: the DVC evaluate stage (models/model.onnx under onnxruntime -> reports/)."""

import logging
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from fingerspell.cli_errors import user_errors
from fingerspell.configs import CONFIG_DIR, setting
from fingerspell.evaluation.stage import EvaluateSettings, run_evaluate
from fingerspell.hydra_cli import run_hydra

log = logging.getLogger(__name__)
COMMAND = "fingerspell-evaluate"


def _names(cfg: DictConfig, key: str) -> tuple[str, ...]:
    """A list of names from the config; `x=rotation` (no brackets) or null would read as letters or crash."""
    value = OmegaConf.select(cfg, key)
    if not OmegaConf.is_list(value) or not all(isinstance(v, str) for v in value):
        shown = "null" if value is None else repr(value)
        raise ValueError(f"{key}={shown} must be a list of names, e.g. '{key}=[rotation,blur]'")
    return tuple(value)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="evaluate")
def _hydra_main(cfg: DictConfig) -> float:
    """Evaluate `cfg.model_path`; returns test accuracy (percent) for sweepers and scripts."""
    with user_errors(COMMAND):
        report = run_evaluate(
            EvaluateSettings(
                model=Path(cfg.model_path),
                processed_dir=Path(cfg.paths.processed_dir),
                eval_report=Path(cfg.outputs.eval),
                predictions=Path(cfg.outputs.predictions),
                robustness_report=Path(cfg.outputs.robustness),
                robustness_plot=Path(cfg.outputs.robustness_plot),
                metrics=Path(cfg.outputs.metrics) if cfg.outputs.get("metrics") else None,
                threads=setting(cfg, "threads", int, None) or None,
                batch_size=setting(cfg, "batch_size", int),
                latency_runs=setting(cfg, "speed.latency_runs", int),
                throughput_batch=setting(cfg, "speed.throughput_batch", int),
                throughput_runs=setting(cfg, "speed.throughput_runs", int),
                robustness_seed=setting(cfg, "robustness.seed", int),
                corruptions=_names(cfg, "robustness.corruptions"),
            )
        )
    log.info("wrote %s: test accuracy %.2f%%", cfg.outputs.eval, report["test/acc"])
    return float(report["test/acc"])


def main() -> None:
    """Console entry point of `fingerspell-evaluate`: config faults end in one line too."""
    run_hydra(COMMAND, _hydra_main)


if __name__ == "__main__":
    main()
