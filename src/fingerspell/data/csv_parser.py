"""A strict, vectorised parser for Sign-MNIST CSV text.

The CSVs are 100 MB of small integers; a general CSV reader spends its time on type
inference and Python objects. Here the bytes are checked and decoded with numpy passes
over pieces of a few MB (cache-sized temporaries, parsed on parallel threads since numpy
releases the GIL), and any fault is reported with its 1-based line number in the file.
"""

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from fingerspell.data.errors import DataError
from fingerspell.data.labels import ABSENT_LABELS, PIXELS

COLUMNS = PIXELS + 1  # label + 784 pixels
EXPECTED_HEADER = ",".join(["label", *(f"pixel{i}" for i in range(1, PIXELS + 1))])
_COMMA, _LF, _CR, _ZERO = 44, 10, 13, 48
_CHUNK_BYTES = 2 << 20
_CORRUPT = "the file is corrupt, re-download it"


@dataclass(frozen=True)
class ParsedSplit:
    """One CSV as arrays: raw labels (0-24, int64) and images (N, 28, 28) uint8."""

    labels: np.ndarray
    images: np.ndarray


def parse_csv(raw: bytes, name: str) -> ParsedSplit:
    """Parse and validate one Sign-MNIST CSV.

    Args:
        raw: the file's bytes (LF or CRLF line endings).
        name: how the file is named in error messages.

    Raises:
        DataError: on a bad header, column count, non-integer cell, pixel outside 0-255,
            label outside {0..24} without 9, or no data rows.
    """
    if not raw.strip():
        raise DataError(f"{name}: file is empty; re-download it or point DVC at a good mirror")
    cut = raw.find(b"\n")
    header = (raw if cut < 0 else raw[:cut]).decode("utf-8", "replace").strip().lstrip("\ufeff")
    if header != EXPECTED_HEADER:
        cols = header.split(",")
        raise DataError(
            f"{name}: line 1: header has {len(cols)} columns starting {','.join(cols[:3])!r}; "
            f"expected 'label,pixel1,...,pixel{PIXELS}' ({COLUMNS} columns)"
        )
    body = np.frombuffer(raw, dtype=np.uint8, offset=cut + 1) if cut >= 0 else np.empty(0, np.uint8)
    buf, eol = _normalise_line_ends(body)
    if buf.size == 0:
        raise DataError(f"{name}: header but no data rows; the file is truncated, re-download it")
    pieces = _pieces(buf, eol)
    with ThreadPoolExecutor(max_workers=min(len(pieces), os.cpu_count() or 1)) as pool:
        tables = list(pool.map(lambda p: _parse_piece(buf[p[0] : p[1]], eol, p[2], name), pieces))
    table = np.concatenate(tables)

    labels = table[:, 0]
    bad_label = np.flatnonzero((labels > 24) | np.isin(labels, list(ABSENT_LABELS)))
    if bad_label.size:
        row = int(bad_label[0])
        raise DataError(
            f"{name}: line {row + 2}: label {int(labels[row])} is not a static letter "
            "(expected 0-24 without 9); the file is corrupt or not Sign-MNIST"
        )
    images = table[:, 1:].astype(np.uint8).reshape(-1, 28, 28)
    return ParsedSplit(labels=labels.astype(np.int64), images=images)


def _normalise_line_ends(buf: np.ndarray) -> tuple[np.ndarray, int]:
    """Strip trailing blank lines, end the last row; return the buffer and its row-end byte.

    CRLF files keep their bytes (a copy without CRs costs as much as the parse): the CR
    ends a row and the LF after it is skipped. Mixed endings fall back to dropping CRs.
    """
    n_cr = int(np.count_nonzero(buf == _CR))
    eol = _CR if n_cr and n_cr == int(np.count_nonzero(buf == _LF)) else _LF
    if n_cr and eol == _LF:
        buf = buf[buf != _CR]
    end = buf.size
    while end and buf[end - 1] in (_LF, _CR):
        end -= 1
    if end == 0:
        return buf[:0], eol
    tail = np.array([_CR, _LF] if eol == _CR else [_LF], dtype=np.uint8)
    return np.concatenate([buf[:end], tail]), eol


def _pieces(buf: np.ndarray, eol: int) -> list[tuple[int, int, int]]:
    """Split at row ends into `(start, stop, line number of the first row)` pieces."""
    raw = buf.tobytes()
    eol_byte = bytes([eol])
    starts, line, pieces = 0, 2, []
    while starts < buf.size:
        cut = raw.find(eol_byte, starts + _CHUNK_BYTES)
        stop = buf.size if cut < 0 else cut + (2 if eol == _CR else 1)
        pieces.append((starts, stop, line))
        line += raw.count(eol_byte, starts, stop)
        starts = stop
    return pieces


def _parse_piece(buf: np.ndarray, eol: int, first_line: int, name: str) -> np.ndarray:
    """Decode whole rows into an int16 table (rows, 785), or raise on the first fault."""
    digits = buf - np.uint8(_ZERO)  # wraps every non-digit to >= 10
    is_digit = digits < 10
    is_sep = (buf == _COMMA) | (buf == eol)
    skip = buf == _LF if eol == _CR else np.zeros_like(is_sep)  # the LF of a CRLF
    bad = ~(is_digit | is_sep | skip)
    if bad.any():
        pos = int(np.argmax(bad))
        where = f"{name}: line {_line(buf, pos, eol, first_line)}"
        raise DataError(
            f"{where}: cell {_cell(buf, pos, is_sep)!r} is not a non-negative integer; {_CORRUPT}"
        )
    # an empty cell: a separator right after a separator or a line start
    starts_field = np.concatenate([[True], (is_sep | skip)[:-1]])
    empty = starts_field & is_sep
    if empty.any():
        pos = int(np.argmax(empty))
        raise DataError(f"{name}: line {_line(buf, pos, eol, first_line)}: empty cell; {_CORRUPT}")
    # four digits in a row cannot be a value 0-255
    long = is_digit[3:] & is_digit[2:-1] & is_digit[1:-2] & is_digit[:-3]
    if long.any():
        pos = int(np.argmax(long)) + 3
        where = f"{name}: line {_line(buf, pos, eol, first_line)}"
        raise DataError(f"{where}: value {_cell(buf, pos, is_sep)!r} is out of range 0-255; {_CORRUPT}")

    seps = np.flatnonzero(is_sep)  # one separator ends every field
    row_ends = np.flatnonzero(buf[seps] == eol)
    fields_per_row = np.diff(row_ends, prepend=-1)
    wrong = np.flatnonzero(fields_per_row != COLUMNS)
    if wrong.size:
        row = int(wrong[0])
        raise DataError(
            f"{name}: line {first_line + row}: {int(fields_per_row[row])} columns, expected {COLUMNS}; "
            "the file is corrupt or not a Sign-MNIST CSV"
        )
    table = _decode(np.where(is_digit, digits, np.uint8(0)), is_digit, seps).reshape(-1, COLUMNS)
    over = np.flatnonzero((table > 255).any(axis=1))
    if over.size:
        row = int(over[0])
        col = int(np.argmax(table[row] > 255))
        what = "label" if col == 0 else f"pixel{col}"
        raise DataError(
            f"{name}: line {first_line + row}: {what}={int(table[row, col])} is out of range 0-255; {_CORRUPT}"
        )
    return table


def _decode(digit_values: np.ndarray, is_digit: np.ndarray, seps: np.ndarray) -> np.ndarray:
    """Value of the field of at most three digits that ends before each separator.

    Ones, tens and hundreds sit 1, 2 and 3 bytes before the separator; the hundreds
    count only if the tens byte is a digit of the same field.
    """
    pad = np.zeros(3, dtype=np.uint8)
    dv = np.concatenate([pad, digit_values])  # dv[i + 3] == digit_values[i]
    dg = np.concatenate([pad.astype(bool), is_digit])
    ones = dv[2:][seps].astype(np.int16)
    tens = dv[1:][seps].astype(np.int16)
    hundreds = dv[seps].astype(np.int16) * dg[1:][seps]
    return ones + tens * 10 + hundreds * 100


def _line(buf: np.ndarray, pos: int, eol: int, first_line: int) -> int:
    """1-based file line of byte `pos` of a piece whose first row is `first_line`."""
    return first_line + int(np.count_nonzero(buf[:pos] == eol))


def _cell(buf: np.ndarray, pos: int, is_sep: np.ndarray) -> str:
    """The text of the cell around byte `pos`, for error messages."""
    start, stop = pos, pos
    while start > 0 and not is_sep[start - 1] and buf[start - 1] != _LF:
        start -= 1
    while stop < buf.size and not is_sep[stop]:
        stop += 1
    return bytes(buf[start:stop]).decode("utf-8", "replace")[:20]
