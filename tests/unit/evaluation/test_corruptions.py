"""Corruptions: seeded, in range, shape-preserving, and harsher with severity."""

import numpy as np
import pytest

from fingerspell.evaluation.corruptions import CORRUPTIONS, SEVERITIES, corrupt
from fingerspell.evaluation.robustness import robustness_report


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    rng = np.random.default_rng(0)
    # smooth-ish images: a bright blob on a gradient, like a hand on a background
    yy, xx = np.mgrid[0:28, 0:28]
    base = 60 + 4 * xx + 120 * np.exp(-((xx - 14) ** 2 + (yy - 12) ** 2) / 40.0)
    noise = rng.normal(0, 3, (32, 1, 28, 28))
    return np.clip(base[None, None] + noise, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_corruption_is_seeded_in_range_and_grows_with_severity(images: np.ndarray, name: str) -> None:
    outs = [corrupt(images, name, s, seed=3) for s in SEVERITIES]
    np.testing.assert_array_equal(outs[0], corrupt(images, name, 1, seed=3))
    assert not np.array_equal(outs[0], corrupt(images, name, 1, seed=4)) or name == "blur"
    change = []
    for out in outs:
        assert out.shape == images.shape
        assert out.dtype == np.float32
        assert out.min() >= 0
        assert out.max() <= 255
        change.append(float(np.abs(out - images).mean()))
    assert 0 < change[0] < change[2], change


def test_corrupt_refuses_unknown_names_and_severities(images: np.ndarray) -> None:
    with pytest.raises(ValueError, match="unknown corruption"):
        corrupt(images, "fog", 1, seed=0)
    with pytest.raises(ValueError, match="severity"):
        corrupt(images, "blur", 4, seed=0)


def test_robustness_report_shape(images: np.ndarray) -> None:
    labels = np.zeros(len(images), np.int64)

    def brightness_classifier(x: np.ndarray) -> np.ndarray:
        # class 0 when the image is brighter than 100 on average, else class 1
        bright = x.reshape(len(x), -1).mean(axis=1) > 100
        return np.stack([bright, ~bright], axis=1).astype(np.float32)

    report = robustness_report(
        brightness_classifier, images, labels, seed=0, corruptions=["blur", "occlusion"]
    )
    assert report["clean/acc"] == 100.0
    assert set(report["corruptions"]) == {"blur", "occlusion"}
    assert set(report["corruptions"]["blur"]) == {"1", "2", "3"}
    assert report["corruptions"]["blur"]["1"] == 100.0  # blur keeps the mean brightness
    assert report["samples"] == len(images)
