"""Test-time views (`--tta`): the crops, the averaging, and the mix with single 28x28 inputs."""

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fingerspell.inference.handfinder import MARGIN
from fingerspell.inference.images import (
    VIEW_MARGINS,
    image_bytes_to_input,
    main_view,
    to_model_input,
    to_model_views,
    view_boxes,
)
from fingerspell.inference.predictor import OnnxPredictor
from tests.fixtures.scenes import scene_with_hand


@pytest.fixture(scope="module")
def predictor(tiny_onnx: Path) -> OnnxPredictor:
    return OnnxPredictor(tiny_onnx)


def test_view_boxes_share_the_centre_and_scale_with_the_margin() -> None:
    box = (40.0, 10.0, 170.0, 140.0)  # a square with MARGIN around the hand
    boxes = view_boxes(box)
    assert len(boxes) == len(VIEW_MARGINS)
    assert boxes[-1] == pytest.approx(box), "the last view is the usual crop"
    hand = 130 / (1 + 2 * MARGIN)
    for (left, top, right, bottom), margin in zip(boxes, VIEW_MARGINS, strict=True):
        assert right - left == pytest.approx(bottom - top), "square"
        assert right - left == pytest.approx(hand * (1 + 2 * margin))
        assert ((left + right) / 2, (top + bottom) / 2) == pytest.approx((105.0, 75.0))
        assert (left, top) >= (box[0], box[1])
        assert min(box[2] - right, box[3] - bottom) >= 0


def test_view_boxes_never_leave_a_box_at_the_image_edge() -> None:
    """Rounding must not put a corner at -1e-14: Pillow refuses a negative box offset."""
    for side in (97.3, 100.0, 333.33):
        for left, top, right, bottom in view_boxes((0.0, 0.0, side, side)):
            assert min(left, top) >= 0.0
            assert max(right, bottom) <= side


def test_views_are_the_crops_then_their_mirrors() -> None:
    img = scene_with_hand(150, 110)
    box = (60.0, 20.0, 240.0, 200.0)
    views = to_model_views(img, box=box, crop="center")
    half = len(VIEW_MARGINS)
    assert views.shape == (2 * half, 28, 28)
    assert views.dtype == np.float32
    np.testing.assert_array_equal(views[half:], views[:half, :, ::-1])
    np.testing.assert_array_equal(main_view(views), to_model_input(img, box=box, crop="center"))
    assert np.abs(views[0] - views[half - 1]).mean() > 1, "a tighter crop is a different image"
    single = to_model_input(img, box=box)
    assert main_view(single) is single


def test_image_bytes_give_views_only_when_asked() -> None:
    buf = io.BytesIO()
    scene_with_hand(200, 150).save(buf, format="PNG")
    data = buf.getvalue()
    assert image_bytes_to_input(data, "x").shape == (28, 28)
    views = image_bytes_to_input(data, "x", tta=True)
    assert views.shape == (8, 28, 28)
    np.testing.assert_array_equal(main_view(views), image_bytes_to_input(data, "x"))


def test_view_probabilities_are_the_mean_over_views(predictor: OnnxPredictor) -> None:
    rng = np.random.default_rng(0)
    views = rng.integers(0, 256, (3, 8, 28, 28)).astype(np.float32)
    got = predictor.predict_proba_views(views)
    assert got.shape == (3, len(predictor.letters))
    for i in range(3):
        np.testing.assert_allclose(got[i], predictor.predict_proba(views[i]).mean(axis=0), atol=1e-6)
    with pytest.raises(ValueError, match="views must be"):
        predictor.predict_proba_views(views[0])


def test_single_inputs_mixed_with_views_keep_their_plain_answer(predictor: OnnxPredictor) -> None:
    rng = np.random.default_rng(1)
    single = rng.integers(0, 256, (28, 28)).astype(np.float32)
    views = rng.integers(0, 256, (8, 28, 28)).astype(np.float32)
    mixed = predictor.predict_inputs([single, views, single], top_k=2)
    plain = predictor.predict(single[None], top_k=2)[0]
    averaged = predictor.decode(predictor.predict_proba_views(views[None]), top_k=2)[0]
    assert mixed[0].letter == plain.letter
    assert mixed[0].probability == pytest.approx(plain.probability, abs=1e-6)
    assert mixed[2].probability == pytest.approx(plain.probability, abs=1e-6)
    assert mixed[1].probability == pytest.approx(averaged.probability, abs=1e-6)
    assert [p.letter for p in predictor.predict_inputs([single, single])] == [plain.letter] * 2
    assert predictor.predict_inputs([]) == []


def test_tta_changes_what_the_model_sees_on_an_off_centre_hand() -> None:
    img = scene_with_hand(270, 170)
    views = to_model_views(img, crop="auto")
    spread = np.abs(views - views.mean(axis=0)).mean()
    assert spread > 2, "the 8 views are not copies of one crop"
    assert Image.fromarray(views[0].astype(np.uint8)).size == (28, 28)


def test_views_around_a_hand_at_the_edge_are_framed_like_the_usual_crop() -> None:
    """Around a hand box each margin is its own `square_around`, kept inside the image."""
    from fingerspell.inference.handfinder import square_around
    from fingerspell.inference.images import hand_view_boxes

    width, height = 400, 300
    hand = (0.08, 0.5, 0.3, 0.4)  # a hand touching the left edge
    boxes = hand_view_boxes(hand, width, height)
    assert boxes[-1] == square_around(hand, width, height), "the last view is the usual 15% crop"
    for (left, top, right, bottom), margin in zip(boxes, VIEW_MARGINS, strict=True):
        assert left >= 0.0
        assert top >= 0.0
        assert right <= width
        assert bottom <= height
        assert right - left == pytest.approx(min(0.4 * height * (1 + 2 * margin), height))
    img = scene_with_hand(60, 150)
    views = to_model_views(img, crop="center", hand=(60 / 400, 150 / 300, 130 / 400, 130 / 300))
    np.testing.assert_array_equal(
        main_view(views), to_model_input(img, box=square_around((0.15, 0.5, 0.325, 130 / 300), 400, 300))
    )


def test_a_frame_where_nothing_stands_out_gets_the_plain_crop_as_every_view() -> None:
    """Like `--crop auto`, the views leave a tight crop (no hand found) whole and unflipped."""
    rng = np.random.default_rng(0)
    flat = Image.fromarray(rng.normal(128, 4, (120, 160, 3)).clip(0, 255).astype(np.uint8))
    views = to_model_views(flat, crop="auto")
    assert views.shape == (8, 28, 28)
    plain = to_model_input(flat, crop="auto")
    for view in views:
        np.testing.assert_array_equal(view, plain)
