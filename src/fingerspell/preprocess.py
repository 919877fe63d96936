"""`fingerspell-preprocess`: the DVC preprocess stage (raw archive -> data/processed/)."""

import logging
from pathlib import Path

import hydra
from omegaconf import DictConfig

from fingerspell.cli_errors import user_errors
from fingerspell.configs import CONFIG_DIR, setting
from fingerspell.data.preprocess import preprocess
from fingerspell.hydra_cli import run_hydra

log = logging.getLogger(__name__)
COMMAND = "fingerspell-preprocess"


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def _hydra_main(cfg: DictConfig) -> None:
    """Validate and split the raw archive named by `paths.raw_archive`."""
    with user_errors(COMMAND):
        meta = preprocess(
            source=Path(cfg.paths.raw_archive),
            out_dir=Path(cfg.paths.processed_dir),
            val_fraction=setting(cfg, "data.val_fraction", float),
            split_seed=setting(cfg, "data.split_seed", int),
            custom=setting(cfg, "data.custom", bool, False),
            expected_fingerprint=cfg.data.fingerprint,
        )
        log.info(
            "wrote %s: rows %s, fingerprint %s", cfg.paths.processed_dir, meta["rows"], meta["fingerprint"]
        )


def main() -> None:
    """Console entry point of `fingerspell-preprocess`: config faults end in one line too."""
    run_hydra(COMMAND, _hydra_main)


if __name__ == "__main__":
    main()
