"""Content checks across splits: the fingerprint, row counts, duplicates and overlap.

Mirrors differ in zip packing and line endings, so identity is a hash of the parsed
arrays, not of the file bytes.
"""

import hashlib

import numpy as np

from fingerspell.data.csv_parser import ParsedSplit
from fingerspell.data.errors import DataError

FINGERPRINT_VERSION = "sign-mnist-arrays-v1"
EXPECTED_ROWS: dict[str, int] = {"train": 27_455, "test": 7_172}


def fingerprint(splits: dict[str, ParsedSplit]) -> str:
    """sha256 over labels and pixels of each split, in split-name order."""
    digest = hashlib.sha256(FINGERPRINT_VERSION.encode())
    for name in sorted(splits):
        split = splits[name]
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(split.labels, dtype=np.uint8).tobytes())
        digest.update(np.ascontiguousarray(split.images, dtype=np.uint8).tobytes())
    return digest.hexdigest()


def check_row_counts(splits: dict[str, ParsedSplit], names: dict[str, str]) -> None:
    """The official data set has fixed row counts; a short file is a truncated download."""
    for split, expected in EXPECTED_ROWS.items():
        rows = len(splits[split].labels)
        if rows != expected:
            raise DataError(
                f"{names[split]}: {rows} data rows, expected {expected}; the file is truncated or "
                "not the official data set (set data.custom=true for a custom data set)"
            )


def check_fingerprint(actual: str, expected: str, source: str) -> None:
    """Refuse data whose content differs from the pinned data set."""
    if actual != expected:
        raise DataError(
            f"{source}: content fingerprint {actual[:12]}... does not match the pinned "
            f"{expected[:12]}...; the data differs from the official Sign-MNIST (re-download it, "
            "or set data.custom=true and data.fingerprint=null for a custom data set)"
        )


def duplicate_report(splits: dict[str, ParsedSplit]) -> dict[str, int]:
    """Count repeated images within each split and images shared by train and test."""
    seen: dict[str, set[bytes]] = {}
    report: dict[str, int] = {}
    for name, split in splits.items():
        rows = [row.tobytes() for row in split.images.reshape(len(split.images), -1)]
        unique = set(rows)
        seen[name] = unique
        report[f"{name}_duplicates"] = len(rows) - len(unique)
    if "train" in seen and "test" in seen:
        report["train_test_overlap"] = len(seen["train"] & seen["test"])
    return report
