"""Content checks: the fingerprint, row counts, duplicates and train/test overlap."""

import numpy as np
import pytest

from fingerspell.data.csv_parser import ParsedSplit, parse_csv
from fingerspell.data.errors import DataError
from fingerspell.data.labels import LABELS, LETTERS, NUM_CLASSES, label_to_index_map, labels_to_indices
from fingerspell.data.validate import (
    EXPECTED_ROWS,
    check_fingerprint,
    check_row_counts,
    duplicate_report,
    fingerprint,
)
from tests.fixtures.data import csv_bytes


def splits(arrays: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, ParsedSplit]:
    return {
        name: ParsedSplit(labels=labels.copy(), images=images.copy())
        for name, (labels, images) in arrays.items()
    }


def test_fingerprint_is_stable_and_hex(tiny_arrays) -> None:
    digest = fingerprint(splits(tiny_arrays))
    assert digest == fingerprint(splits(tiny_arrays))
    assert len(digest) == 64
    int(digest, 16)


def test_fingerprint_ignores_line_ends(tiny_arrays) -> None:
    def parsed(eol: str) -> dict[str, ParsedSplit]:
        return {name: parse_csv(csv_bytes(*arrays, eol), name) for name, arrays in tiny_arrays.items()}

    assert fingerprint(parsed("\n")) == fingerprint(parsed("\r\n")) == fingerprint(splits(tiny_arrays))


@pytest.mark.parametrize("change", ["pixel", "label", "row-order", "swap-splits", "drop-row"])
def test_fingerprint_sees_every_content_change(tiny_arrays, change: str) -> None:
    original = fingerprint(splits(tiny_arrays))
    data = splits(tiny_arrays)
    train = data["train"]
    if change == "pixel":
        train.images[17, 13, 13] ^= 1
    elif change == "label":
        train.labels[3] = LABELS[(LABELS.index(int(train.labels[3])) + 1) % NUM_CLASSES]
    elif change == "row-order":
        data["train"] = ParsedSplit(labels=train.labels[::-1].copy(), images=train.images[::-1].copy())
    elif change == "swap-splits":
        data = {"train": data["test"], "test": data["train"]}
    else:
        data["train"] = ParsedSplit(labels=train.labels[:-1], images=train.images[:-1])
    assert fingerprint(data) != original


def test_row_counts_pass_for_the_official_sizes() -> None:
    data = {
        split: ParsedSplit(labels=np.zeros(rows, np.int64), images=np.zeros((rows, 28, 28), np.uint8))
        for split, rows in EXPECTED_ROWS.items()
    }
    check_row_counts(data, {"train": "a.csv", "test": "b.csv"})


def test_row_counts_official_values() -> None:
    assert EXPECTED_ROWS == {"train": 27_455, "test": 7_172}


def test_short_file_is_reported_by_name(tiny_arrays) -> None:
    with pytest.raises(DataError) as info:
        check_row_counts(splits(tiny_arrays), {"train": "z.zip:sign_mnist_train.csv", "test": "t.csv"})
    message = str(info.value)
    assert message.startswith("z.zip:sign_mnist_train.csv: 240 data rows, expected 27455")
    assert "data.custom=true" in message


def test_fingerprint_mismatch_message() -> None:
    with pytest.raises(DataError) as info:
        check_fingerprint("a" * 64, "b" * 64, "data/raw/x.zip")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("data/raw/x.zip: content fingerprint aaaaaaaaaaaa")
    assert "bbbbbbbbbbbb" in message
    assert "re-download" in message


def test_fingerprint_match_passes() -> None:
    check_fingerprint("c" * 64, "c" * 64, "x.zip")


def test_duplicate_and_overlap_report(tiny_arrays) -> None:
    data = splits(tiny_arrays)
    assert duplicate_report(data) == {"train_duplicates": 0, "test_duplicates": 0, "train_test_overlap": 0}
    data["train"].images[5] = data["train"].images[4]
    data["train"].images[9] = data["train"].images[4]
    data["test"].images[0] = data["train"].images[100]
    data["test"].images[1] = data["train"].images[4]
    assert duplicate_report(data) == {"train_duplicates": 2, "test_duplicates": 0, "train_test_overlap": 2}


def test_label_map_skips_j_and_z() -> None:
    assert len(LABELS) == len(LETTERS) == NUM_CLASSES == 24
    assert 9 not in LABELS
    assert 25 not in LABELS
    assert "".join(LETTERS) == "ABCDEFGHIKLMNOPQRSTUVWXY"
    assert label_to_index_map()[8] == 8
    assert label_to_index_map()[10] == 9
    assert label_to_index_map()[24] == 23
    indices = labels_to_indices(np.array([0, 8, 10, 24, 13]))
    assert indices.dtype == np.int64
    assert indices.tolist() == [0, 8, 9, 23, 12]
