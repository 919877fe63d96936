"""Run the predictor over a photo set in one reading (full frame, found hand, or hand box) and summarise."""

from dataclasses import dataclass
from typing import Any

import numpy as np

from fingerspell.inference.handfinder import square_around
from fingerspell.inference.images import (
    Crop,
    ImageError,
    needs_colour,
    read_image_file,
    to_model_input,
    to_model_views,
)
from fingerspell.inference.predictor import OnnxPredictor
from fingerspell.inference.reading import PLAIN, PhotoStyle
from fingerspell.photos.dataset import Photo, PhotoSetError
from fingerspell.photos.metrics import summarise

READINGS = ("full", "auto", "box")  # centre crop, the hand finder's crop, the annotated hand box


@dataclass(frozen=True)
class PhotoRun:
    """Predictions for the photos that could be read, and the ones that could not."""

    probs: np.ndarray
    labels: np.ndarray
    groups: np.ndarray
    failed: list[str]


def model_inputs(
    photos: list[Photo], reading: str, tta: bool = False, style: PhotoStyle = PLAIN
) -> tuple[np.ndarray, list[int], list[str]]:
    """Inputs of the readable photos, their indices, and one line per unreadable one.

    Inputs are (N, 28, 28), or with `tta` (N, V, 28, 28): V test-time views per photo, read
    the way the model asks (`style`: its grey weights and background dimming).
    """
    if reading not in READINGS:
        raise ValueError(f"reading {reading!r} must be one of {', '.join(READINGS)}")
    if reading == "box" and any(p.box is None for p in photos):
        raise PhotoSetError(
            "the 'box' reading needs box_cx,box_cy,box_w,box_h for every photo (a CSV source)"
        )
    arrays, kept, failed = [], [], []
    for i, photo in enumerate(photos):
        try:
            crop: Crop = "auto" if reading == "auto" else "center"
            img = read_image_file(photo.path, colour=needs_colour(crop, style))
            box = square_around(photo.box, *img.size) if reading == "box" and photo.box else None
            hand = photo.box if reading == "box" else None
            arrays.append(
                to_model_views(img, crop=crop, hand=hand, style=style)
                if tta
                else to_model_input(img, box=box, crop=crop, style=style)
            )
            kept.append(i)
        except ImageError as err:
            failed.append(str(err))
    stacked = np.stack(arrays) if arrays else np.zeros((0, 8, 28, 28) if tta else (0, 28, 28), np.float32)
    return stacked, kept, failed


def run_photos(predictor: OnnxPredictor, photos: list[Photo], reading: str, tta: bool = False) -> PhotoRun:
    """Predict every readable photo in `reading` (averaged over the test-time views with `tta`)."""
    inputs, kept, failed = model_inputs(photos, reading, tta, predictor.metadata.photo_style)
    if not kept:
        raise PhotoSetError(f"none of the {len(photos)} photos could be read; first error: {failed[0]}")
    index = {letter: i for i, letter in enumerate(predictor.letters)}
    chosen = [photos[i] for i in kept]
    return PhotoRun(
        probs=predictor.predict_proba_views(inputs) if tta else predictor.predict_proba(inputs),
        labels=np.array([index[p.letter] for p in chosen]),
        groups=np.array([p.group for p in chosen]),
        failed=failed,
    )


def report(
    run: PhotoRun, letters: tuple[str, ...], threshold: float | None, n_boot: int, seed: int
) -> dict[str, Any]:
    """Summary metrics plus the failures, JSON-ready."""
    result = summarise(run.probs, run.labels, run.groups, letters, threshold, n_boot, seed)
    result["unreadable"] = run.failed
    return result
