"""Temp files beside their destination, for write-then-rename outputs, and JSON reports written so.

`tempfile.mkstemp` creates files readable by the owner only (0600); an output renamed into
place from it would keep that mode, so the mode is reset to what the umask gives a new file.
"""

import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def current_umask() -> int:
    """The process umask (reading it means setting it, so it is set straight back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def temp_beside(path: Path, suffix: str = ".tmp") -> Path:
    """A new empty temp file in `path`'s folder (created if needed), with ordinary permissions."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
    finally:
        os.close(fd)
    return Path(name)


def atomic_write(path: Path, write: Callable[[Path], object]) -> Path:
    """Call `write(tmp)` on a temp file beside `path`, then rename it into place."""
    path = Path(path)
    tmp = temp_beside(path, suffix=path.suffix)
    try:
        write(tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def finite(data: Any) -> Any:
    """`data` with NaN and infinities as None (JSON null), in nested dicts and lists.

    JSON has no such numbers: Python writes `NaN`, which browsers' and most tools' parsers refuse.
    """
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {key: finite(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [finite(value) for value in data]
    return data


def json_text(data: Any, sort_keys: bool = False) -> str:
    """Indented, strict JSON (no NaN: see `finite`) with a final newline."""
    return json.dumps(finite(data), indent=2, sort_keys=sort_keys, allow_nan=False) + "\n"


def write_json(path: Path, data: Any, sort_keys: bool = False) -> Path:
    """Write `data` as strict JSON to `path` atomically, so readers (DVC, CI) never see half a report."""
    text = json_text(data, sort_keys)
    return atomic_write(Path(path), lambda tmp: tmp.write_text(text))
