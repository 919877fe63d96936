"""Accuracy targets: test accuracy and training wall time of the default config and `experiment=fast`.

Trains each config on the real data (no MLflow: logger=none), writing into a temp folder, and
records test/acc and the fit time to benchmarks/results/train_accuracy.json. Targets on the
2-core dev machine: default >= 99.9% within 180 s of training; fast >= 99.5% within 60 s.

    python benchmarks/train_accuracy.py [--configs default fast]
"""

import argparse
import json
import os
import tempfile
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict

from fingerspell.configs import CONFIG_DIR
from fingerspell.train import train

REPO = Path(__file__).resolve().parents[1]
CONFIGS = {"default": ([], 0.999, 180.0), "fast": (["experiment=fast"], 0.995, 60.0)}


def run(name: str, tmp: Path) -> dict:
    overrides, acc_goal, time_goal = CONFIGS[name]
    GlobalHydra.instance().clear()
    with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                *overrides,
                "logger=none",
                "callbacks.rich_progress_bar=null",
                f"paths.processed_dir={REPO / 'data/processed'}",
                f"paths.models_dir={tmp / name}",
                f"paths.checkpoints_dir={tmp / name / 'ckpt'}",
                f"paths.reports_dir={tmp / name / 'reports'}",
                f"paths.logs_dir={tmp / 'logs'}",
            ],
            return_hydra_config=True,
        )
    HydraConfig().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    metrics = train(cfg)
    return {
        "overrides": overrides,
        "model": cfg.model._target_,
        "epochs": metrics.get("epochs"),
        "test_acc": metrics["test/acc"],
        "fit_s": metrics["time/fit_s"],
        "goal_acc": acc_goal,
        "goal_fit_s": time_goal,
        "meets_goal": metrics["test/acc"] >= acc_goal and metrics["time/fit_s"] <= time_goal,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    args = parser.parse_args()
    out = REPO / "benchmarks" / "results" / "train_accuracy.json"
    results = json.loads(out.read_text()) if out.exists() else {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.configs:
            results[name] = run(name, Path(tmp)) | {"load_avg": os.getloadavg()}
            print(name, json.dumps(results[name]))
    tmp_out = out.with_suffix(".json.tmp")
    tmp_out.write_text(json.dumps(results, indent=2) + "\n")
    tmp_out.replace(out)


if __name__ == "__main__":
    main()
