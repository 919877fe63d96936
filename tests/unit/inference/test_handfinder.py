"""The hand finder (`--crop auto`): finds an off-centre object, leaves tight crops alone."""

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fingerspell.data.processed import load_split
from fingerspell.inference.handfinder import find_hand, square_around
from fingerspell.inference.images import (
    CROPS,
    center_square,
    crop_box,
    decode_image,
    image_bytes_to_input,
    to_model_input,
)
from tests.fixtures.scenes import scene_with_hand


def inside(box: tuple[float, float, float, float], x: float, y: float) -> bool:
    return box[0] <= x <= box[2] and box[1] <= y <= box[3]


@pytest.mark.parametrize(("cx", "cy"), [(270, 170), (140, 130), (230, 190)])
def test_finds_an_off_centre_hand(cx: float, cy: float) -> None:
    img = scene_with_hand(cx, cy)
    box = find_hand(img)
    left, top, right, bottom = box
    assert right - left == pytest.approx(bottom - top), "a square, like the model's input"
    assert min(left, top) >= 0, "inside the photo"
    assert right <= 400, "inside the photo"
    assert bottom <= 300, "inside the photo"
    assert inside(box, cx, cy), f"the hand's centre ({cx}, {cy}) is in the crop {box}"
    assert right - left < 300, "it zooms in on the hand instead of taking the whole centre square"
    centre = ((left + right) / 2, (top + bottom) / 2)
    moved = np.hypot(centre[0] - cx, centre[1] - cy)
    assert moved < np.hypot(200 - cx, 150 - cy), "the crop is centred nearer the hand than the frame is"


def test_a_tight_crop_keeps_the_whole_centre_square(processed_dir: Path) -> None:
    """Sign-MNIST images are the hand already: auto must read them exactly as center does."""
    images, _ = load_split(processed_dir, "test")
    for pixels in images[:60, 0]:
        for side in (28, 112):
            img = Image.fromarray(pixels).resize((side, side), Image.Resampling.BICUBIC)
            assert find_hand(img) == center_square(side, side)
            np.testing.assert_array_equal(
                to_model_input(img, crop="auto"), to_model_input(img, crop="center")
            )


def test_a_flat_or_grey_frame_falls_back_to_the_centre_square() -> None:
    for img in (Image.new("RGB", (320, 240), (90, 90, 90)), Image.new("L", (64, 48), 200)):
        assert find_hand(img) == center_square(*img.size)


def test_crop_choices_and_colour_decoding() -> None:
    assert CROPS == ("center", "auto")
    img = scene_with_hand(270, 170)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90)
    data = buf.getvalue()
    assert decode_image(data, "x.jpg", colour=True).mode == "RGB", "the finder needs colour"
    assert decode_image(data, "x.jpg").mode == "L", "center keeps the fast luma-only decode"
    auto, center = (
        image_bytes_to_input(data, "x", crop="auto"),
        image_bytes_to_input(data, "x", crop="center"),
    )
    assert auto.shape == center.shape == (28, 28)
    assert np.abs(auto - center).mean() > 5, "the two crops show the model different pixels"
    with pytest.raises(ValueError, match="crop must be one of"):
        crop_box(img, "middle")


def test_square_around_stays_inside_and_keeps_the_margin() -> None:
    left, top, right, bottom = square_around((0.5, 0.5, 0.2, 0.1), 400, 200)
    assert right - left == pytest.approx(0.2 * 400 * 1.3)
    left, top, right, bottom = square_around((0.02, 0.02, 0.9, 0.9), 400, 200)
    assert (left, top, right, bottom) == (0.0, 0.0, 200.0, 200.0), "clamped to the short side"
