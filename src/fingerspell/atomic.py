"""Temp files beside their destination, for write-then-rename outputs.

`tempfile.mkstemp` creates files readable by the owner only (0600); an output renamed into
place from it would keep that mode, so the mode is reset to what the umask gives a new file.
"""

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


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
