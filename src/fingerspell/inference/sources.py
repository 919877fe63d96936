"""What `fingerspell-predict` reads: image files, folders (recursive), Sign-MNIST CSVs, stdin.

Each input becomes either a model input or a one-line error; one bad input never stops the
others. CSV rows are checked here; images go through `inference.images`, the same path the
HTTP service uses.
"""

import csv
import string
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from fingerspell.data.labels import LABELS
from fingerspell.inference.images import (
    DEFAULT_CROP,
    Crop,
    ImageError,
    array_to_input,
    decode_image,
    needs_colour,
    read_image_file,
    to_model_input,
    to_model_views,
)
from fingerspell.inference.reading import PLAIN, PhotoStyle

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff"})
CSV_SUFFIX = ".csv"
PIXELS = 28 * 28
_PIXEL_HEADER = [f"pixel{i}" for i in range(1, PIXELS + 1)]


@dataclass(frozen=True)
class Item:
    """One input: its name and either the float32 pixels or the error saying why not.

    Pixels are (28, 28), or (V, 28, 28) test-time views for a photo read with `tta`.
    """

    name: str
    pixels: np.ndarray | None = None
    error: str | None = None
    expected: str | None = None  # the letter a labelled CSV row names


def _image_item(
    name: str,
    data: bytes | None,
    path: Path | None,
    max_pixels: int,
    crop: Crop,
    tta: bool = False,
    style: PhotoStyle = PLAIN,
) -> Item:
    colour = needs_colour(crop, style)  # the hand finder works on colour, and so may the model's grey
    try:
        img = (
            read_image_file(path, max_pixels, colour)
            if path is not None
            else decode_image(data or b"", name, max_pixels, colour)
        )
        pixels = (
            to_model_views(img, crop=crop, style=style)
            if tta
            else to_model_input(img, crop=crop, style=style)
        )
        return Item(name, pixels)
    except ImageError as err:
        return Item(name, error=str(err))


def _cells(line: str) -> list[str] | None:
    """One CSV line's cells, quotes removed (pandas' QUOTE_ALL, spreadsheets); None if it is malformed.

    Line by line, not one reader over the file: a stray quote must spoil its own row, not every
    row after it.
    """
    try:
        return next(csv.reader([line], strict=True), [])
    except csv.Error:
        return None


def csv_items(text: str, name: str) -> Iterator[Item]:
    """Rows of a Sign-MNIST CSV (`label,pixel1..pixel784` or `pixel1..pixel784`), one item per row.

    A wrong header is one error for the whole file; a bad row is an error for that row only.
    Rows are named by their line number in the file.
    """
    lines = text.lstrip("\ufeff").splitlines()
    first = _cells(lines[0]) if lines else []
    if first is None:
        yield Item(name, error=f"{name}: header is not a readable CSV line")
        return
    if not any(cell.strip() for cell in first):
        yield Item(name, error=f"{name}: empty CSV, expected a 'label,pixel1,...,pixel784' header")
        return
    header = [c.strip() for c in first]
    labelled = header[:1] == ["label"]
    pixel_columns = header[1:] if labelled else header
    if pixel_columns != _PIXEL_HEADER:
        yield Item(
            name,
            error=f"{name}: CSV has {len(header)} columns starting {','.join(header[:2])!r}; expected Sign-MNIST "
            f"columns 'label,pixel1,...,pixel{PIXELS}' (or without label)",
        )
        return
    rows = 0
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        rows += 1
        row_name = f"{name}:{number}"
        cells = _cells(line)
        if cells is None:
            yield Item(row_name, error=f"{row_name}: not a readable CSV row (an unclosed quote?)")
            continue
        try:
            values = np.array(cells, dtype=np.float64)
        except ValueError:
            yield Item(row_name, error=f"{row_name}: non-numeric value in the row")
            continue
        if len(values) != len(header):
            yield Item(row_name, error=f"{row_name}: {len(values)} values, expected {len(header)}")
            continue
        expected = None
        if labelled:
            if values[0] not in LABELS:  # a wrong label would be reported as the truth
                yield Item(
                    row_name,
                    error=f"{row_name}: label {values[0]:g} is not a Sign-MNIST letter "
                    "(0-24 without 9: J and Z need motion); fix it or drop the label column",
                )
                continue
            expected = string.ascii_uppercase[int(values[0])]
            values = values[1:]
        try:
            yield Item(row_name, array_to_input(values, row_name), expected=expected)
        except ImageError as err:
            yield Item(row_name, error=str(err))
    if rows == 0:
        yield Item(name, error=f"{name}: CSV has a header but no rows")


def _file_items(path: Path, max_pixels: int, crop: Crop, tta: bool, style: PhotoStyle) -> Iterator[Item]:
    if path.suffix.lower() == CSV_SUFFIX:
        try:
            text = path.read_text(encoding="utf-8-sig", errors="replace")
        except OSError as err:
            yield Item(str(path), error=f"{path}: not readable ({err.strerror or err})")
            return
        yield from csv_items(text, str(path))
    else:
        yield _image_item(str(path), None, path, max_pixels, crop, tta, style)


def _stdin_items(
    stream: BinaryIO, max_pixels: int, crop: Crop, tta: bool, style: PhotoStyle
) -> Iterator[Item]:
    data = stream.read()
    head = data[:16].lstrip(b"\xef\xbb\xbf").lower().replace(b'"', b"")
    if head.startswith((b"label,", b"pixel1,")):
        yield from csv_items(data.decode("utf-8", errors="replace"), "<stdin>")
    else:
        yield _image_item("<stdin>", data, None, max_pixels, crop, tta, style)


def expand(
    inputs: list[str],
    max_pixels: int,
    stdin: BinaryIO | None = None,
    crop: Crop = DEFAULT_CROP,
    tta: bool = False,
    style: PhotoStyle = PLAIN,
) -> Iterator[Item]:
    """Every input, in order: folders walked recursively (sorted; hidden files and unknown suffixes skipped).

    Photos are cropped by `crop` (center|auto), read the way the model asks (`style`: its grey weights and
    background dimming), and split into test-time views with `tta`; CSV rows are 28x28 grey crops already and stay one view.
    """
    for spec in inputs:
        if spec == "-":
            yield from _stdin_items(stdin or sys.stdin.buffer, max_pixels, crop, tta, style)
            continue
        path = Path(spec)
        if path.is_dir():
            files = sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and p.suffix.lower() in IMAGE_SUFFIXES | {CSV_SUFFIX}
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            if not files:
                yield Item(
                    spec, error=f"{spec}: folder has no images ({', '.join(sorted(IMAGE_SUFFIXES))}) or CSVs"
                )
            for file in files:
                yield from _file_items(file, max_pixels, crop, tta, style)
        elif not path.exists():
            yield Item(spec, error=f"{spec}: no such file or folder")
        else:
            yield from _file_items(path, max_pixels, crop, tta, style)
