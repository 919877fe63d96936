"""List a labelled photo set: an ImageFolder tree or a CSV with `path,letter` (+ hand box, group).

Only listing and cropping; no decoding happens until an image is used.
"""

import csv
from dataclasses import dataclass
from pathlib import Path

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff"}
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


def load_photo_set(source: Path, letters: tuple[str, ...], group_column: str | None = None) -> list[Photo]:
    """Read `source` (a folder with one subfolder per letter, or a CSV) into photos.

    Raises:
        PhotoSetError: missing source, unknown letter, missing file, or an empty set.
    """
    source = Path(source)
    if not source.exists():
        raise PhotoSetError(f"{source}: no such folder or CSV file")
    photos = _from_csv(source, letters, group_column) if source.is_file() else _from_folder(source, letters)
    if not photos:
        raise PhotoSetError(
            f"{source}: no images found (expected <letter>/<image> folders or a path,letter CSV)"
        )
    return photos


def _from_folder(root: Path, letters: tuple[str, ...]) -> list[Photo]:
    photos = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        letter = folder.name.upper()
        if letter not in letters:
            raise PhotoSetError(
                f"{folder}: folder name {folder.name!r} is not one of the model's letters ({''.join(letters)})"
            )
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
                photos.append(Photo(path=path, letter=letter, group=str(path.relative_to(root))))
    return photos


def _from_csv(path: Path, letters: tuple[str, ...], group_column: str | None) -> list[Photo]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns = set(reader.fieldnames or [])
        missing = {"path", "letter"} - columns
        if missing:
            raise PhotoSetError(f"{path}: CSV lacks column(s) {', '.join(sorted(missing))}; need path,letter")
        if group_column and group_column not in columns:
            raise PhotoSetError(f"{path}: no column {group_column!r} to group by")
        has_box = set(BOX_COLUMNS) <= columns
        photos = []
        for line, row in enumerate(reader, start=2):
            letter = (row["letter"] or "").strip().upper()
            if letter not in letters:
                raise PhotoSetError(
                    f"{path}: line {line}: letter {row['letter']!r} is not one of {''.join(letters)}"
                )
            image = (path.parent / row["path"]).resolve()
            if not image.is_file():
                raise PhotoSetError(f"{path}: line {line}: image {row['path']!r} not found")
            box = None
            if has_box and all(row[c] not in (None, "") for c in BOX_COLUMNS):
                try:
                    box = tuple(float(row[c]) for c in BOX_COLUMNS)
                except ValueError as err:
                    raise PhotoSetError(f"{path}: line {line}: hand box is not numeric ({err})") from err
            group = row[group_column] if group_column else row["path"]
            photos.append(Photo(path=image, letter=letter, group=group, box=box))  # type: ignore[arg-type]
    return photos
