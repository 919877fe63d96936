"""Where the Hydra config tree lives, for every entry point and test.

Hydra resolves a relative `config_path` against the calling module's package, which
breaks for console scripts; an absolute path to the repository's `conf/` does not.
"""

from pathlib import Path

CONFIG_DIR: str = str(Path(__file__).resolve().parents[2] / "conf")
