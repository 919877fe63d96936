"""A model's `grey_weights` (how a colour photo becomes its grey input) reach every reader.

The CLI, the service and `fingerspell-evaluate-images` must all apply the weights the model
carries, or the same photo would be read three ways. The photos here have red and green that
disagree, so luma and the green channel give clearly different inputs.
"""

import base64
import io
import json
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from fingerspell.inference.cli import main
from fingerspell.inference.images import (
    decode_image,
    image_bytes_to_input,
    needs_colour,
    to_grey,
    to_model_input,
    to_model_views,
)
from fingerspell.inference.predictor import OnnxPredictor
from fingerspell.inference.reading import LUMA, PhotoStyle, parse_grey_weights
from fingerspell.photos.dataset import load_photo_set
from fingerspell.photos.evaluate import run_photos
from fingerspell.serve import create_app
from tests.fixtures.serve import tiny_onnx_model

GREEN = (0.0, 1.0, 0.0)
SPEC = {"shape": [None, 1, 28, 28], "dtype": "float32", "range": [0, 255], "colour": "grey"}


def two_tone_photo(width: int = 120, height: int = 90) -> Image.Image:
    """Reddish stripes on a greenish ground: luma and the green channel read them differently."""
    rgb = np.zeros((height, width, 3), np.uint8)
    rgb[..., 0] = np.where((np.arange(width) // 10) % 2, 230, 40)[None, :]
    rgb[..., 1] = np.linspace(60, 200, height, dtype=np.uint8)[:, None]
    rgb[..., 2] = 90
    return Image.fromarray(rgb, "RGB")


def encoded(img: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, quality=95)
    return buf.getvalue()


@pytest.fixture(scope="module")
def green_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("green") / "green.onnx"
    return tiny_onnx_model(out, metadata={"input": json.dumps({**SPEC, "grey_weights": list(GREEN)})})


def test_to_grey_weighs_the_channels_and_leaves_grey_images_alone() -> None:
    img = two_tone_photo()
    rgb = np.asarray(img)
    np.testing.assert_array_equal(np.asarray(to_grey(img, GREEN)), rgb[..., 1])
    np.testing.assert_array_equal(np.asarray(to_grey(img)), np.asarray(img.convert("L")))
    np.testing.assert_array_equal(np.asarray(to_grey(img, LUMA)), np.asarray(img.convert("L")))
    red = np.asarray(to_grey(img, (1.0, 0.0, 0.0)))
    np.testing.assert_array_equal(red, rgb[..., 0])
    grey = img.convert("L")
    np.testing.assert_array_equal(np.asarray(to_grey(grey, (1.0, 0.0, 0.0))), np.asarray(grey))


@pytest.mark.parametrize(
    "value", [[0, 1], [0.5, 0.6, 0.0], [-0.2, 1.2, 0.0], [True, False, False], ["0", "1", "0"], "green", None]
)
def test_weights_that_would_leave_0_255_are_refused(value: object) -> None:
    with pytest.raises(ValueError, match=r"must be 3 numbers >= 0 \(red, green, blue\) that add up to 1"):
        parse_grey_weights(value)


def test_a_jpeg_is_decoded_in_colour_only_when_the_weights_need_it() -> None:
    assert not needs_colour("center")
    assert not needs_colour("center", PhotoStyle(LUMA))
    assert not needs_colour("center", PhotoStyle(LUMA, dim_background=0.8)), "it needs the finder's colour"
    assert needs_colour("center", PhotoStyle(GREEN))
    assert needs_colour("auto", PhotoStyle(LUMA))
    data = encoded(two_tone_photo(), "JPEG")
    green = image_bytes_to_input(data, "x.jpg", crop="center", style=PhotoStyle(GREEN))
    expected = to_model_input(
        decode_image(data, "x.jpg", colour=True), crop="center", style=PhotoStyle(GREEN)
    )
    np.testing.assert_array_equal(green, expected)
    luma = image_bytes_to_input(data, "x.jpg", crop="center")
    assert np.abs(green - luma).mean() > 10, "a grey decode would have read luma whatever the weights"
    assert image_bytes_to_input(data, "x.jpg", crop="auto", style=PhotoStyle(GREEN), tta=True).shape == (
        8,
        28,
        28,
    )
    flat = Image.new("RGB", (90, 60), (200, 60, 90))  # nothing stands out: the finder's fallback
    assert (to_model_views(flat, crop="auto", style=PhotoStyle(GREEN)) == 60).all()
    assert (to_model_input(flat, crop="auto", style=PhotoStyle(GREEN)) == 60).all()


def test_the_predictor_reads_the_weights_from_the_input_spec(green_model: Path, tiny_onnx: Path) -> None:
    green = OnnxPredictor(green_model).metadata
    assert green.grey_weights == GREEN
    assert green.to_dict()["grey_weights"] == [0.0, 1.0, 0.0]
    assert OnnxPredictor(tiny_onnx).metadata.grey_weights == LUMA, "older models say nothing: luma"


def same_answer(got: dict[str, float], letters: tuple[str, ...], probs: np.ndarray) -> bool:
    return all(got[x] == pytest.approx(float(p), abs=1e-6) for x, p in zip(letters, probs, strict=True))


def expected_probs(
    predictor: OnnxPredictor, img: Image.Image, crop: str, tta: bool, grey: tuple
) -> np.ndarray:
    if tta:
        return predictor.predict_proba_views(to_model_views(img, crop=crop, style=PhotoStyle(grey))[None])[0]  # type: ignore[arg-type]
    return predictor.predict_proba(to_model_input(img, crop=crop, style=PhotoStyle(grey))[None])[0]  # type: ignore[arg-type]


@pytest.mark.parametrize(("crop", "tta"), [("center", False), ("center", True), ("auto", True)])
def test_predict_cli_applies_the_models_weights(
    green_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], crop: str, tta: bool
) -> None:
    """A JPEG, which is decoded in grey unless colour is asked for; one view and the `--tta` views."""
    photo = tmp_path / "stripes.jpg"
    photo.write_bytes(encoded(two_tone_photo(), "JPEG"))
    options = ["--crop", crop, "--json", "--top-k", "24"] + (["--tta"] if tta else [])
    assert main([str(green_model), str(photo), *options]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["model"]["grey_weights"] == [0.0, 1.0, 0.0]
    got = {t["letter"]: t["probability"] for t in doc["predictions"][0]["top_k"]}
    predictor = OnnxPredictor(green_model)
    img = decode_image(photo.read_bytes(), "x.jpg", colour=True)
    assert same_answer(got, predictor.letters, expected_probs(predictor, img, crop, tta, GREEN))
    assert not same_answer(got, predictor.letters, expected_probs(predictor, img, crop, tta, LUMA))


def test_the_service_applies_the_models_weights(green_model: Path) -> None:
    predictor = OnnxPredictor(green_model)
    client = TestClient(create_app(predictor))
    meta = client.get("/metadata").json()
    assert meta["grey_weights"] == [0.0, 1.0, 0.0]
    assert meta["input"]["grey_weights"] == [0.0, 1.0, 0.0]
    data = encoded(two_tone_photo(), "JPEG")
    upload = [("file", ("x.jpg", data, "image/jpeg"))]
    response = client.post("/predict?view=true&crop=center", files=upload)
    assert response.status_code == 200, response.text
    view = response.json()["predictions"][0]["view"]
    pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(view.split(",", 1)[1]))), np.float32)
    expected = np.clip(
        np.rint(image_bytes_to_input(data, "x", crop="center", style=PhotoStyle(GREEN))), 0, 255
    )
    np.testing.assert_array_equal(pixels, expected)
    luma = np.clip(np.rint(image_bytes_to_input(data, "x", crop="center")), 0, 255)
    assert np.abs(pixels - luma).mean() > 10
    img = decode_image(data, "x.jpg", colour=True)
    for crop in ("center", "auto"):
        response = client.post(f"/predict?tta=true&top_k=24&crop={crop}", files=upload)
        got = {t["letter"]: t["probability"] for t in response.json()["predictions"][0]["top_k"]}
        assert same_answer(got, predictor.letters, expected_probs(predictor, img, crop, True, GREEN)), crop
        assert not same_answer(got, predictor.letters, expected_probs(predictor, img, crop, True, LUMA)), crop


@pytest.mark.parametrize(
    ("reading", "crop", "tta"), [("full", "center", False), ("full", "center", True), ("auto", "auto", True)]
)
def test_evaluate_images_applies_the_models_weights(
    green_model: Path, tmp_path: Path, reading: str, crop: str, tta: bool
) -> None:
    predictor = OnnxPredictor(green_model)
    folder = tmp_path / "photos" / "A"
    folder.mkdir(parents=True)
    (folder / "a.jpg").write_bytes(encoded(two_tone_photo(), "JPEG"))
    photos = load_photo_set(tmp_path / "photos", predictor.letters)
    got = run_photos(predictor, photos, reading, tta=tta).probs[0]
    img = decode_image((folder / "a.jpg").read_bytes(), "a.jpg", colour=True)
    np.testing.assert_allclose(got, expected_probs(predictor, img, crop, tta, GREEN), atol=1e-6)
    assert np.abs(got - expected_probs(predictor, img, crop, tta, LUMA)).max() > 1e-4
