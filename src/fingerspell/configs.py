"""Where the Hydra config tree lives, for every entry point and test.

Hydra resolves a relative `config_path` against the calling module's package, which
breaks for console scripts; an absolute path to the repository's `conf/` does not.
"""

from pathlib import Path
from typing import Any, TypeVar

from omegaconf import OmegaConf

CONFIG_DIR: str = str(Path(__file__).resolve().parents[2] / "conf")
T = TypeVar("T", int, float, bool)


_REQUIRED: Any = object()


def setting(cfg: Any, key: str, kind: type[T], default: T | None = _REQUIRED) -> T:
    """The config value at dotted `key` as `kind` (int, float or bool), or one line naming the key.

    `int(cfg.x)` on a typo'd override says "invalid literal for int() ... 'abc'" without the key,
    and `bool("no")` is silently true; this says `opset='abc' must be a whole number`. A missing
    or null key gives `default` (None for an optional setting); without one it must be set.
    """
    what = {int: "a whole number", float: "a number", bool: "true or false"}[kind]
    value = OmegaConf.select(cfg, key, default=None)
    if value is None:
        if default is _REQUIRED:
            raise ValueError(f"{key} must be set to {what}")
        return default  # type: ignore[return-value]
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise ValueError(f"{key}={value!r} must be {what}")
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind is int and is_number and float(value).is_integer():
        return int(value)
    if kind is float and is_number:
        return float(value)  # type: ignore[return-value]
    raise ValueError(f"{key}={value!r} must be {what}")
