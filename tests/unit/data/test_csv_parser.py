"""The strict CSV parser: values, line endings, and one clear message per kind of bad cell."""

import re

import numpy as np
import pytest

from fingerspell.data import csv_parser
from fingerspell.data.csv_parser import EXPECTED_HEADER, parse_csv
from fingerspell.data.errors import DataError
from tests.fixtures.data import csv_bytes, csv_row, make_csv, tiny_split

NAME = "sign_mnist_train.csv"


def good_rows(n: int = 4) -> list[str]:
    labels, images = tiny_split(1, seed=3)
    return [csv_row(label, image.ravel()) for label, image in zip(labels[:n], images[:n], strict=True)]


def with_row(row: str, at: int = 2) -> bytes:
    """A CSV of good rows with `row` inserted as data row `at` (0-based), i.e. file line at + 2."""
    rows = good_rows()
    rows.insert(at, row)
    return make_csv(rows)


def error_of(raw: bytes) -> str:
    with pytest.raises(DataError) as info:
        parse_csv(raw, NAME)
    message = str(info.value)
    assert "\n" not in message, "a user-facing message is one line"
    assert message.startswith(f"{NAME}: "), "the message names the file first"
    return message


def line_of(message: str) -> int:
    found = re.search(r": line (\d+): ", message)
    assert found, f"no line number in {message!r}"
    return int(found.group(1))


def test_parses_labels_and_images_exactly() -> None:
    labels, images = tiny_split(2, seed=5)
    parsed = parse_csv(csv_bytes(labels, images), NAME)
    assert parsed.labels.dtype == np.int64
    assert parsed.images.dtype == np.uint8
    assert parsed.images.shape == (48, 28, 28)
    np.testing.assert_array_equal(parsed.labels, labels)
    np.testing.assert_array_equal(parsed.images, images)


def test_row_major_pixel_order() -> None:
    pixels = np.arange(784) % 256
    parsed = parse_csv(make_csv([csv_row(3, pixels)]), NAME)
    assert parsed.images[0, 0, 5] == 5, "pixel6 is row 0, column 5"
    assert parsed.images[0, 1, 0] == 28, "pixel29 starts the second image row"
    assert parsed.images[0, 27, 27] == 783 % 256


@pytest.mark.parametrize(
    "variant",
    [
        pytest.param(lambda raw: raw.replace(b"\n", b"\r\n"), id="crlf"),
        pytest.param(lambda raw: raw[:-1], id="no-final-newline"),
        pytest.param(lambda raw: raw + b"\n\n", id="trailing-blank-lines"),
        pytest.param(lambda raw: raw.replace(b"\n", b"\r\n") + b"\r\n", id="crlf-trailing-blank-line"),
        pytest.param(lambda raw: b"\xef\xbb\xbf" + raw, id="utf8-bom"),
        pytest.param(lambda raw: raw.replace(b"\n", b"\r\n", 3), id="mixed-line-ends"),
    ],
)
def test_line_end_variants_give_the_same_arrays(variant) -> None:
    labels, images = tiny_split(2, seed=6)
    raw = csv_bytes(labels, images)
    reference = parse_csv(raw, NAME)
    other = parse_csv(variant(raw), NAME)
    np.testing.assert_array_equal(other.labels, reference.labels)
    np.testing.assert_array_equal(other.images, reference.images)


def test_leading_zeros_are_values() -> None:
    parsed = parse_csv(make_csv([csv_row("03", ["007", "010", *[0] * 782])]), NAME)
    assert parsed.labels.tolist() == [3]
    assert parsed.images[0, 0, :3].tolist() == [7, 10, 0]


def test_empty_file() -> None:
    message = error_of(b"")
    assert "empty" in message


def test_whitespace_only_file_is_empty() -> None:
    assert "empty" in error_of(b"\r\n\n  \n")


@pytest.mark.parametrize("eol", ["\n", "\r\n", ""])
def test_header_only_file(eol: str) -> None:
    message = error_of((EXPECTED_HEADER + eol).encode())
    assert "no data rows" in message
    assert "re-download" in message


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(EXPECTED_HEADER.replace("pixel7,", "pixelX,"), id="renamed-column"),
        pytest.param(EXPECTED_HEADER.rsplit(",", 1)[0], id="784-columns"),
        pytest.param("3," + ",".join(["0"] * 784), id="no-header"),
    ],
)
def test_bad_header(header: str) -> None:
    message = error_of(make_csv(good_rows(), header=header))
    assert line_of(message) == 1
    assert "header" in message
    assert "785 columns" in message


@pytest.mark.parametrize(("n_pixels", "columns"), [(783, 784), (785, 786), (0, 1)])
def test_wrong_column_count(n_pixels: int, columns: int) -> None:
    message = error_of(with_row(csv_row(3, [1] * n_pixels), at=2))
    assert line_of(message) == 4
    assert f"{columns} columns, expected 785" in message


@pytest.mark.parametrize("cell", ["x", "-1", "1.5", " 7", "1e2", "NaN", "12a"])
def test_non_numeric_cell(cell: str) -> None:
    message = error_of(with_row(csv_row(3, [0] * 500 + [cell] + [0] * 283), at=1))
    assert line_of(message) == 3
    assert repr(cell) in message
    assert "not a non-negative integer" in message


def test_non_numeric_label() -> None:
    message = error_of(with_row(csv_row("A", [0] * 784), at=0))
    assert line_of(message) == 2
    assert "'A'" in message


@pytest.mark.parametrize("row", [csv_row(3, ["", *[0] * 783]), csv_row(3, [0] * 784) + ","])
def test_empty_cell(row: str) -> None:
    message = error_of(with_row(row, at=3))
    assert line_of(message) == 5
    assert "empty cell" in message


def test_blank_line_between_rows() -> None:
    assert line_of(error_of(with_row("", at=1))) == 3


@pytest.mark.parametrize("label", [9, 25, 26, 255])
def test_label_not_a_static_letter(label: int) -> None:
    message = error_of(with_row(csv_row(label, [0] * 784), at=2))
    assert line_of(message) == 4
    assert f"label {label} " in message
    assert "0-24 without 9" in message


@pytest.mark.parametrize(("index", "value"), [(0, 256), (783, 256), (100, 999), (5, 1000)])
def test_pixel_out_of_range(index: int, value: int) -> None:
    pixels = [0] * 784
    pixels[index] = value
    message = error_of(with_row(csv_row(3, pixels), at=3))
    assert line_of(message) == 5
    assert str(value) in message
    assert "out of range 0-255" in message


def test_pixel_256_names_the_column() -> None:
    pixels = [0] * 784
    pixels[41] = 256
    assert "pixel42=256" in error_of(with_row(csv_row(3, pixels), at=0))


def test_label_over_255_is_an_error() -> None:
    message = error_of(with_row(csv_row(300, [0] * 784), at=0))
    assert line_of(message) == 2
    assert "300" in message


@pytest.mark.parametrize("eol", ["\n", "\r\n"])
@pytest.mark.parametrize("chunk", [4_000, 50_000, 2 << 20])
@pytest.mark.parametrize("bad_row", [0, 1, 37, 88, 119])
def test_line_numbers_are_right_across_parallel_pieces(
    monkeypatch: pytest.MonkeyPatch, eol: str, chunk: int, bad_row: int
) -> None:
    # small pieces put the bad row at every position: first row of a piece, middle, last
    monkeypatch.setattr(csv_parser, "_CHUNK_BYTES", chunk)
    labels, images = tiny_split(5, seed=8)  # 120 rows of ~2.8 kB
    rows = [csv_row(label, image.ravel()) for label, image in zip(labels, images, strict=True)]
    rows[bad_row] = rows[bad_row].replace(",", ",?", 1)
    message = error_of(make_csv(rows, eol))
    assert line_of(message) == bad_row + 2


@pytest.mark.parametrize("chunk", [4_000, 2 << 20])
def test_label_error_line_number_in_a_later_piece(monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    monkeypatch.setattr(csv_parser, "_CHUNK_BYTES", chunk)
    labels, images = tiny_split(5, seed=9)
    labels[101] = 9
    assert line_of(error_of(csv_bytes(labels, images, "\r\n"))) == 103


def test_many_pieces_parse_like_one(monkeypatch: pytest.MonkeyPatch) -> None:
    labels, images = tiny_split(5, seed=10)
    raw = csv_bytes(labels, images, "\r\n")
    whole = parse_csv(raw, NAME)
    monkeypatch.setattr(csv_parser, "_CHUNK_BYTES", 3_000)
    pieces = parse_csv(raw, NAME)
    np.testing.assert_array_equal(pieces.labels, whole.labels)
    np.testing.assert_array_equal(pieces.images, whole.images)
