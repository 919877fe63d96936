"""`dim_background`: around a hand the finder found, the room is moved towards grey, nowhere else.

The scene is drawn (a skin-coloured hand in a blue-grey room) so the tests know where the hand
is; the real photos are measured in `benchmarks/real_hands.py`.
"""

import io
import json
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from fingerspell.inference.cli import main
from fingerspell.inference.handfinder import find_hand_and_mask, square_around
from fingerspell.inference.images import (
    center_square,
    dim_background,
    image_bytes_to_input,
    to_model_input,
    to_model_views,
)
from fingerspell.inference.predictor import OnnxPredictor
from fingerspell.inference.reading import PLAIN, PhotoStyle, parse_dim_background
from fingerspell.photos.dataset import load_photo_set
from fingerspell.photos.evaluate import run_photos
from fingerspell.serve import create_app
from tests.fixtures.scenes import scene_with_hand
from tests.fixtures.serve import tiny_onnx_model

DIMMED = PhotoStyle(dim_background=0.8)
SPEC = {"shape": [None, 1, 28, 28], "dtype": "float32", "range": [0, 255], "colour": "grey"}


def jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=95)
    return buf.getvalue()


@pytest.fixture(scope="module")
def dim_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dim") / "dim.onnx"
    return tiny_onnx_model(out, metadata={"input": json.dumps({**SPEC, "dim_background": 0.8})})


def test_only_the_background_moves_and_by_the_share_asked() -> None:
    view = np.random.default_rng(0).uniform(0, 255, (28, 28)).astype(np.float32)
    mask = np.zeros((64, 64), np.float32)
    mask[:, :32] = 1.0  # the left half of the photo is hand
    out = dim_background(view, mask, (0.0, 0.0, 64.0, 64.0), (64, 64), 0.8)
    np.testing.assert_allclose(out[:, :12], view[:, :12], atol=1e-4)
    expected = view[:, 16:] - 0.8 * (view[:, 16:] - view.mean())
    np.testing.assert_allclose(out[:, 16:], expected, atol=1e-3)
    assert out.min() >= view.min(), "never out of the view's own range"
    assert out.max() <= view.max()
    np.testing.assert_array_equal(dim_background(view, mask, (0, 0, 64, 64), (64, 64), 0.0), view)


def test_the_mask_is_cut_where_the_view_is() -> None:
    """A view inside the photo's right half sees only background: all of it moves."""
    view = np.full((28, 28), 200.0, np.float32)
    view[:, :14] = 100.0
    mask = np.zeros((64, 64), np.float32)
    mask[:, :32] = 1.0
    right = dim_background(view, mask, (400.0, 0.0, 640.0, 240.0), (640, 320), 1.0)
    np.testing.assert_allclose(right, np.full_like(view, 150.0), atol=1e-3)


def test_the_mask_is_scaled_on_each_axis_of_a_wide_photo() -> None:
    """A 640x320 photo whose top half is hand: a view of its lower half is all background."""
    view = np.full((28, 28), 200.0, np.float32)
    view[:14] = 100.0
    mask = np.zeros((64, 64), np.float32)
    mask[:32, :] = 1.0  # the top half of the photo, in the finder's 64x64 grid
    lower = dim_background(view, mask, (100.0, 200.0, 220.0, 320.0), (640, 320), 1.0)
    np.testing.assert_allclose(lower, np.full_like(view, 150.0), atol=1e-3)
    upper = dim_background(view, mask, (100.0, 0.0, 220.0, 120.0), (640, 320), 1.0)
    np.testing.assert_allclose(upper, view, atol=1e-3)


def test_auto_crop_dims_the_room_around_a_found_hand() -> None:
    scene = scene_with_hand(250, 160)
    hand, mask = find_hand_and_mask(scene)
    assert hand is not None
    assert mask.shape == (64, 64)
    assert 0 < mask.mean() < 0.5
    plain = to_model_input(scene, crop="auto")
    dimmed = to_model_input(scene, crop="auto", style=DIMMED)
    same_box = to_model_input(scene, box=square_around(hand, *scene.size))
    np.testing.assert_array_equal(plain, same_box)
    assert dimmed.std() < plain.std(), "a flatter room"
    assert np.abs(dimmed - plain).max() > 10
    views = to_model_views(scene, crop="auto", style=DIMMED)
    np.testing.assert_allclose(views[3], dimmed, atol=1e-4)  # the 15% view is the usual crop
    np.testing.assert_allclose(views[7], dimmed[:, ::-1], atol=1e-4)
    assert np.abs(views - to_model_views(scene, crop="auto")).max() > 10


def test_nothing_is_dimmed_without_the_finder_or_without_a_hand() -> None:
    scene = scene_with_hand(250, 160)
    np.testing.assert_array_equal(
        to_model_input(scene, crop="center", style=DIMMED), to_model_input(scene, crop="center")
    )
    np.testing.assert_array_equal(
        to_model_views(scene, crop="center", style=DIMMED), to_model_views(scene, crop="center")
    )
    hand = (0.6, 0.5, 0.3, 0.4)  # an annotated box (the evaluator's `box` reading): no finder
    np.testing.assert_array_equal(
        to_model_views(scene, hand=hand, style=DIMMED), to_model_views(scene, hand=hand)
    )
    tight = Image.fromarray(np.tile(np.linspace(90, 200, 112, dtype=np.uint8), (112, 1)), "L").convert("RGB")
    assert find_hand_and_mask(tight) == (None, None)  # a tight crop (like Sign-MNIST): nothing stands out
    np.testing.assert_array_equal(
        to_model_input(tight, crop="auto", style=DIMMED), to_model_input(tight, crop="auto")
    )
    np.testing.assert_array_equal(
        to_model_views(tight, crop="auto", style=DIMMED),
        np.repeat(to_model_input(tight, box=center_square(112, 112))[None], 8, axis=0),
    )


@pytest.mark.parametrize("value", [1.5, -0.1, "a lot", True, None, float("nan"), [0.5]])
def test_a_share_outside_0_1_is_refused(value: object) -> None:
    with pytest.raises(ValueError, match=r"must be a number in \[0, 1\]"):
        parse_dim_background(value)
    with pytest.raises(ValueError, match="must be a number in"):
        PhotoStyle(dim_background=value)  # type: ignore[arg-type]


def test_numpy_numbers_are_numbers() -> None:
    assert parse_dim_background(np.float64(0.25)) == 0.25
    assert PhotoStyle((np.float32(0.0), np.float64(1.0), 0), 0.5).dim_background == 0.5  # type: ignore[arg-type]


def test_the_predictor_reads_it_from_the_input_spec(dim_model: Path, tiny_onnx: Path) -> None:
    meta = OnnxPredictor(dim_model).metadata
    assert meta.dim_background == 0.8
    assert meta.photo_style == PhotoStyle(dim_background=0.8)
    assert meta.to_dict()["dim_background"] == 0.8
    assert OnnxPredictor(tiny_onnx).metadata.photo_style == PLAIN, "older models say nothing: off"


def answers(top_k: list[dict]) -> dict[str, float]:
    return {t["letter"]: t["probability"] for t in top_k}


def close(got: dict[str, float], letters: tuple[str, ...], probs: np.ndarray) -> bool:
    return all(got[x] == pytest.approx(float(p), abs=1e-6) for x, p in zip(letters, probs, strict=True))


def expected(predictor: OnnxPredictor, img: Image.Image, tta: bool, style: PhotoStyle) -> np.ndarray:
    if tta:
        return predictor.predict_proba_views(to_model_views(img, crop="auto", style=style)[None])[0]
    return predictor.predict_proba(to_model_input(img, crop="auto", style=style)[None])[0]


@pytest.mark.parametrize("tta", [False, True])
def test_cli_service_and_evaluator_apply_the_models_dimming(
    dim_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], tta: bool
) -> None:
    predictor = OnnxPredictor(dim_model)
    data = jpeg(scene_with_hand(250, 160))
    img = Image.open(io.BytesIO(data)).convert("RGB")
    want, plain = expected(predictor, img, tta, DIMMED), expected(predictor, img, tta, PLAIN)
    assert np.abs(want - plain).max() > 1e-4, "the drawn room must matter to this model"

    photo = tmp_path / "photos" / "A" / "scene.jpg"
    photo.parent.mkdir(parents=True)
    photo.write_bytes(data)
    assert main([str(dim_model), str(photo), "--json", "--top-k", "24", *(["--tta"] if tta else [])]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["model"]["dim_background"] == 0.8
    assert close(answers(doc["predictions"][0]["top_k"]), predictor.letters, want), "predict CLI"

    client = TestClient(create_app(predictor))
    response = client.post(
        f"/predict?top_k=24&tta={str(tta).lower()}", files=[("file", ("x.jpg", data, "image/jpeg"))]
    )
    assert close(answers(response.json()["predictions"][0]["top_k"]), predictor.letters, want), "service"
    assert client.get("/metadata").json()["input"]["dim_background"] == 0.8

    got = run_photos(
        predictor, load_photo_set(tmp_path / "photos", predictor.letters), "auto", tta=tta
    ).probs[0]
    np.testing.assert_allclose(got, want, atol=1e-6)
    np.testing.assert_allclose(
        image_bytes_to_input(data, "x", tta=tta, style=DIMMED),
        (to_model_views if tta else to_model_input)(img, crop="auto", style=DIMMED),
        atol=1e-4,
    )
