"""List a labelled photo set: an ImageFolder tree or a CSV with `path,letter` (+ hand box, group).

Only listing and cropping; no decoding happens until an image is used.
"""

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from fingerspell.inference.sources import IMAGE_SUFFIXES

BOX_COLUMNS = ("box_cx", "box_cy", "box_w", "box_h")


class PhotoSetError(ValueError):
    """The photo set cannot be read as given; one line for the user."""


@dataclass(frozen=True)
class Photo:
    """One labelled photo; `box` is the hand as (cx, cy, w, h) normalised to the image."""

    path: Path
    letter: str
    group: str
    box: tuple[float, float, float, float] | None = None


SOURCE_HINT = "SOURCE must be a folder with one subfolder per letter, or a UTF-8 CSV with path,letter columns"
PREDICT_HINT = "(to read one image, use fingerspell-predict)"


def load_photo_set(source: Path, letters: tuple[str, ...], group_column: str | None = None) -> list[Photo]:
    """Read `source` (a folder with one subfolder per letter, or a CSV) into photos.

    Raises:
        PhotoSetError: missing or unreadable source, an image or binary file given as SOURCE,
            unknown letter, missing file, bad hand box, or an empty set.
    """
    source = Path(source)
    if not source.exists():
        raise PhotoSetError(f"{source}: no such folder or CSV file")
    if source.is_file() and source.suffix.lower() in IMAGE_SUFFIXES:
        raise PhotoSetError(f"{source} is an image; {SOURCE_HINT} {PREDICT_HINT}")
    if not source.is_file() and not source.is_dir():
        raise PhotoSetError(f"{source} is neither a folder nor a file; {SOURCE_HINT}")
    try:
        photos = (
            _from_csv(source, letters, group_column) if source.is_file() else _from_folder(source, letters)
        )
    except UnicodeDecodeError as err:
        if _is_image(source):
            raise PhotoSetError(f"{source} is an image, not a CSV; {SOURCE_HINT} {PREDICT_HINT}") from err
        raise PhotoSetError(f"{source} is not UTF-8 text ({err.reason}); {SOURCE_HINT}") from err
    except csv.Error as err:
        raise PhotoSetError(f"{source} is not a readable CSV ({err}); {SOURCE_HINT}") from err
    except OSError as err:  # permissions, a folder vanishing mid-listing: one line, not a traceback
        raise PhotoSetError(f"{source}: cannot read ({err.strerror or err})") from err
    if not photos:
        raise PhotoSetError(
            f"{source}: no images found (expected <letter>/<image> folders or a path,letter CSV)"
        )
    return photos


def _is_image(path: Path) -> bool:
    """True if PIL recognises the header: a binary SOURCE may be an image under another name.

    Asked only once a file has failed to decode as text, so no CSV is ever taken for an image.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path):
            return True
    except (UnidentifiedImageError, OSError, ValueError):
        return False


def _from_folder(root: Path, letters: tuple[str, ...]) -> list[Photo]:
    photos = []
    # hidden folders and files (.ipynb_checkpoints, .DS_Store) are not photos, as for fingerspell-predict
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        letter = folder.name.upper()
        if letter not in letters:
            raise PhotoSetError(
                f"{folder}: folder name {folder.name!r} is not one of the model's letters ({''.join(letters)})"
            )
        for path in sorted(folder.rglob("*")):
            hidden = any(part.startswith(".") for part in path.relative_to(folder).parts)
            if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not hidden:
                photos.append(Photo(path=path, letter=letter, group=str(path.relative_to(root))))
    return photos


def _from_csv(path: Path, letters: tuple[str, ...], group_column: str | None) -> list[Photo]:
    with path.open(newline="", encoding="utf-8-sig") as handle:  # -sig: Excel's BOM
        reader = csv.DictReader(handle)
        columns = set(reader.fieldnames or [])
        missing = {"path", "letter"} - columns
        if missing:
            raise PhotoSetError(f"{path}: CSV lacks column(s) {', '.join(sorted(missing))}; need path,letter")
        if group_column and group_column not in columns:
            raise PhotoSetError(f"{path}: no column {group_column!r} to group by")
        has_box = set(BOX_COLUMNS) <= columns
        photos = []
        for row in reader:
            line = reader.line_num  # the physical line (the last one of a quoted multi-line row)
            letter = (row["letter"] or "").strip().upper()
            if letter not in letters:
                raise PhotoSetError(
                    f"{path}: line {line}: letter {row['letter']!r} is not one of {''.join(letters)}"
                )
            if not (row["path"] or "").strip():
                raise PhotoSetError(f"{path}: line {line}: no image path")
            if "\0" in row["path"]:  # valid UTF-8 but binary: no path can hold a NUL byte
                raise PhotoSetError(f"{path}: line {line}: image path has a NUL byte; {SOURCE_HINT}")
            image = (path.parent / row["path"]).resolve()
            if not image.is_file():
                raise PhotoSetError(f"{path}: line {line}: image {row['path']!r} not found")
            box = None
            if has_box and all(row[c] not in (None, "") for c in BOX_COLUMNS):
                box = _box(row, f"{path}: line {line}")
            group = (row[group_column] or "").strip() if group_column else row["path"]
            if not group:
                raise PhotoSetError(
                    f"{path}: line {line}: no {group_column} value to group by; fill it in, or leave out --group-column"
                )
            photos.append(Photo(path=image, letter=letter, group=group, box=box))
    return photos


def _box(row: dict[str, str], where: str) -> tuple[float, float, float, float]:
    """The row's hand box; a zero or negative size is a typo, not a hand, so it is refused, not cropped."""
    try:
        cx, cy, w, h = (float(row[c]) for c in BOX_COLUMNS)
    except ValueError as err:
        raise PhotoSetError(f"{where}: hand box is not numeric ({err})") from err
    if not all(math.isfinite(v) for v in (cx, cy, w, h)):
        raise PhotoSetError(f"{where}: hand box has a non-finite value ({cx}, {cy}, {w}, {h})")
    if w <= 0 or h <= 0:
        raise PhotoSetError(
            f"{where}: hand box size must be positive (box_w={row['box_w']}, box_h={row['box_h']})"
        )
    return cx, cy, w, h
