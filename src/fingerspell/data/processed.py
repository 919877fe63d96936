"""The on-disk format of `data/processed/`: what preprocess writes and everything else reads.

One `<split>.npz` per split (`images` uint8 N x 1 x 28 x 28, `labels` int64 class indices)
and `meta.json` (letters, label map, normalisation, counts, split seed, fingerprint).
"""

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from fingerspell.atomic import current_umask
from fingerspell.data.errors import DataError

SPLITS: tuple[str, ...] = ("train", "val", "test")
META_FILE = "meta.json"


def write_processed(
    out_dir: Path, arrays: dict[str, tuple[np.ndarray, np.ndarray]], meta: dict[str, Any]
) -> None:
    """Write all splits and meta into a temp folder beside `out_dir`, then swap it in.

    A failure at any point leaves `out_dir` as it was.
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    tmp.chmod(0o777 & ~current_umask())  # mkdtemp makes 0700; the output is an ordinary folder
    try:
        for split, (images, labels) in arrays.items():
            np.savez(tmp / f"{split}.npz", images=images, labels=labels)
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
        old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
        if out_dir.exists():
            out_dir.rename(old)
        tmp.rename(out_dir)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load_meta(data_dir: Path) -> dict[str, Any]:
    """Read `meta.json`, with a hint to run the pipeline when it is missing."""
    path = Path(data_dir) / META_FILE
    if not path.is_file():
        raise DataError(f"{path}: processed data not found; run 'dvc repro preprocess' first")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: not valid JSON ({err}); run 'dvc repro preprocess' again") from err


def load_split(data_dir: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Return `(images uint8 (N,1,28,28), labels int64 (N,))` of one split."""
    path = Path(data_dir) / f"{split}.npz"
    if not path.is_file():
        raise DataError(f"{path}: processed split not found; run 'dvc repro preprocess' first")
    try:
        with np.load(path) as npz:
            images, labels = npz["images"], npz["labels"]
    except (OSError, KeyError, ValueError) as err:
        raise DataError(f"{path}: unreadable ({err}); run 'dvc repro preprocess' again") from err
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (1, 28, 28):
        raise DataError(f"{path}: images are {images.dtype} {images.shape}, expected uint8 N x 1 x 28 x 28")
    if labels.shape != (len(images),):
        raise DataError(f"{path}: {labels.shape[0]} labels for {len(images)} images")
    return images, labels.astype(np.int64, copy=False)
