"""The Sign Language MNIST label set: labels 0-24 for A-Y, with 9 (J) absent.

J and Z need motion, so the data set has 24 classes and the CSV label is not the class
index from J on; every conversion goes through this module.
"""

import string

import numpy as np

ABSENT_LABELS: frozenset[int] = frozenset({9, 25})
LABELS: tuple[int, ...] = tuple(label for label in range(25) if label not in ABSENT_LABELS)
LETTERS: tuple[str, ...] = tuple(string.ascii_uppercase[label] for label in LABELS)
NUM_CLASSES: int = len(LABELS)
IMAGE_SIZE: int = 28
PIXELS: int = IMAGE_SIZE * IMAGE_SIZE


def label_to_index_map() -> dict[int, int]:
    """CSV label -> contiguous class index (0..23)."""
    return {label: index for index, label in enumerate(LABELS)}


def labels_to_indices(labels: np.ndarray) -> np.ndarray:
    """Vectorised CSV label -> class index (int64); labels must already be validated."""
    lut = np.full(26, -1, dtype=np.int64)
    lut[list(LABELS)] = np.arange(NUM_CLASSES)
    return lut[labels]
