"""Raw archive -> validated, split arrays in `data/processed/`."""

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from fingerspell.data.archive import read_split_csvs
from fingerspell.data.csv_parser import ParsedSplit, parse_csv
from fingerspell.data.labels import LABELS, LETTERS, NUM_CLASSES, label_to_index_map, labels_to_indices
from fingerspell.data.processed import write_processed
from fingerspell.data.split import stratified_split
from fingerspell.data.validate import check_fingerprint, check_row_counts, duplicate_report, fingerprint

log = logging.getLogger(__name__)


def preprocess(
    source: Path,
    out_dir: Path,
    val_fraction: float,
    split_seed: int,
    custom: bool = False,
    expected_fingerprint: str | None = None,
) -> dict[str, Any]:
    """Read, validate, split and write the data set; return the meta written to `meta.json`.

    Args:
        source: the raw archive (zip) or a folder of CSVs.
        out_dir: `data/processed`, replaced atomically on success only.
        val_fraction: share of each class of the train CSV held out for validation.
        split_seed: seed of that split.
        custom: accept data that is not the official Sign-MNIST (skips row counts and
            the fingerprint check).
        expected_fingerprint: pinned content hash of the official data set.

    Raises:
        DataError: bad or unexpected input; nothing is written.
        ValueError: a bad config value.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"data.val_fraction={val_fraction} must be between 0 and 1 (exclusive), e.g. 0.1")
    if split_seed < 0:  # numpy's "expected non-negative integer" names no key
        raise ValueError(f"data.split_seed={split_seed} must be a whole number >= 0")
    if not custom and not expected_fingerprint:
        raise ValueError("data.fingerprint is empty; pin it, or set data.custom=true for a custom data set")
    start = time.perf_counter()
    raw = read_split_csvs(Path(source))
    names = {split: name for split, (name, _) in raw.items()}
    parsed: dict[str, ParsedSplit] = {split: parse_csv(data, name) for split, (name, data) in raw.items()}
    digest = fingerprint(parsed)
    if not custom:
        check_row_counts(parsed, names)
        check_fingerprint(digest, str(expected_fingerprint), str(source))
    duplicates = duplicate_report(parsed)

    train_y = labels_to_indices(parsed["train"].labels)
    test_y = labels_to_indices(parsed["test"].labels)
    train_idx, val_idx = stratified_split(train_y, val_fraction, split_seed)
    train_x = parsed["train"].images[:, None]  # (N, 1, 28, 28)
    arrays = {
        "train": (np.ascontiguousarray(train_x[train_idx]), train_y[train_idx]),
        "val": (np.ascontiguousarray(train_x[val_idx]), train_y[val_idx]),
        "test": (parsed["test"].images[:, None], test_y),
    }
    meta = _meta(arrays, val_fraction, split_seed, digest, custom, duplicates, str(source))
    write_processed(Path(out_dir), arrays, meta)
    log.info("preprocessed %s in %.2f s: %s", source, time.perf_counter() - start, meta["rows"])
    return meta


def _meta(
    arrays: dict[str, tuple[np.ndarray, np.ndarray]],
    val_fraction: float,
    split_seed: int,
    digest: str,
    custom: bool,
    duplicates: dict[str, int],
    source: str,
) -> dict[str, Any]:
    # pixel histogram: exact mean/std without a float copy of every pixel
    hist = np.bincount(arrays["train"][0].ravel(), minlength=256).astype(np.float64)
    levels = np.arange(256) / 255.0
    mean = float((hist * levels).sum() / hist.sum())
    std = float(np.sqrt((hist * (levels - mean) ** 2).sum() / hist.sum()))
    return {
        "dataset": "custom" if custom else "sign-mnist",
        "source": source,
        "letters": list(LETTERS),
        "num_classes": NUM_CLASSES,
        "label_to_index": {str(label): index for label, index in label_to_index_map().items()},
        "index_to_label": list(LABELS),
        "image_shape": [1, 28, 28],
        "normalization": {
            "mean": mean,
            "std": std,
            "scale": 255.0,
        },
        "rows": {split: len(labels) for split, (_, labels) in arrays.items()},
        "counts": {
            split: {LETTERS[i]: int(n) for i, n in enumerate(np.bincount(labels, minlength=NUM_CLASSES))}
            for split, (_, labels) in arrays.items()
        },
        "val_fraction": val_fraction,
        "split_seed": split_seed,
        "fingerprint": digest,
        "duplicates": duplicates,
    }
