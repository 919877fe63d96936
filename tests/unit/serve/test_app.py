"""The app's contract through FastAPI's TestClient (fast); the live-server tests repeat it over real HTTP."""

import base64
import io
import json
import logging
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from fingerspell.inference.images import image_bytes_to_input
from fingerspell.inference.predictor import OnnxPredictor
from fingerspell.serve import ServeSettings, create_app
from tests.fixtures.scenes import scene_with_hand
from tests.fixtures.serve import png_bytes

SMALL = ServeSettings(max_upload_bytes=50_000, max_images=3, max_pixels=250_000)


@pytest.fixture(scope="module")
def predictor(tiny_onnx: Path) -> OnnxPredictor:
    return OnnxPredictor(tiny_onnx)


@pytest.fixture(scope="module")
def client(predictor: OnnxPredictor) -> TestClient:
    return TestClient(create_app(predictor, SMALL), raise_server_exceptions=False)


def sample(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (28, 28)).astype(np.uint8)


def files(*blobs: bytes) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("file", (f"img{i}.png", blob, "image/png")) for i, blob in enumerate(blobs)]


def assert_error(response, status: int) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["status"] == status
    assert body["message"]
    assert "\n" not in body["message"]
    return body


def test_health_ready_metadata(client: TestClient, predictor: OnnxPredictor) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    assert client.head("/health").status_code == 200, "probes that send HEAD get a 200, not a 405"
    assert client.get("/ready").json() == {"status": "ready"}
    meta = client.get("/metadata").json()
    assert meta["letters"] == list(predictor.letters)
    assert meta["run_id"] == "tiny-run"
    assert meta["version"] == "0.0.0-tiny"
    assert meta["input"]["shape"] == [None, 1, 28, 28]
    assert meta["limits"]["max_images"] == SMALL.max_images
    assert meta["crop"] == "auto", "photos are searched for the hand unless the server says otherwise"


def test_multipart_answers_match_the_predictor_in_order(client: TestClient, predictor: OnnxPredictor) -> None:
    blobs = [png_bytes(sample(i)) for i in range(3)]
    response = client.post("/predict?top_k=4", files=files(*blobs))
    assert response.status_code == 200, response.text
    answers = response.json()["predictions"]
    expected = predictor.predict(np.stack([image_bytes_to_input(b, "x") for b in blobs]), top_k=4)
    assert [a["name"] for a in answers] == ["img0.png", "img1.png", "img2.png"]
    for answer, want in zip(answers, expected, strict=True):
        assert answer["letter"] == want.letter
        assert answer["probability"] == pytest.approx(want.probability, rel=1e-5)
        assert [t["letter"] for t in answer["top_k"]] == [letter for letter, _ in want.top_k]
        assert "view" not in answer


def test_json_arrays_nested_or_flat(client: TestClient, predictor: OnnxPredictor) -> None:
    pixels = sample(5)
    body = {"images": [pixels.tolist(), pixels.reshape(-1).tolist()]}
    answers = client.post("/predict", json=body).json()["predictions"]
    (want,) = predictor.predict(pixels[None].astype(np.float32))
    assert [a["letter"] for a in answers] == [want.letter, want.letter]
    assert answers[0]["name"] == "images[0]"
    assert len(answers[0]["top_k"]) == SMALL.default_top_k


def test_view_is_the_exact_model_input(client: TestClient) -> None:
    blob = png_bytes(sample(2), scale=3)
    (answer,) = client.post("/predict?view=true", files=files(blob)).json()["predictions"]
    prefix = "data:image/png;base64,"
    assert answer["view"].startswith(prefix)
    view = np.asarray(Image.open(io.BytesIO(base64.b64decode(answer["view"][len(prefix) :]))))
    assert view.shape == (28, 28)
    np.testing.assert_array_equal(view, np.clip(np.rint(image_bytes_to_input(blob, "x")), 0, 255))


def test_unsure_answer_carries_advice(client: TestClient) -> None:
    # the untrained tiny model is never 50% sure of anything
    (answer,) = client.post("/predict", files=files(png_bytes(sample(1)))).json()["predictions"]
    assert answer["unsure"] is True
    assert "closer" in answer["advice"]
    assert "background" in answer["advice"]


def big_png() -> bytes:
    buf = io.BytesIO()
    Image.new("L", (600, 600), 128).save(buf, format="PNG")  # 360,000 px, tiny file
    return buf.getvalue()


@pytest.mark.parametrize(
    ("request_kwargs", "status", "error", "says"),
    [
        (
            {"content": b"hello", "headers": {"content-type": "text/plain"}},
            415,
            "unsupported_media_type",
            "text/plain",
        ),
        (
            {"content": b"\x89PNG", "headers": {"content-type": "image/png"}},
            415,
            "unsupported_media_type",
            "multipart",
        ),
        ({"content": b"x"}, 415, "unsupported_media_type", "none"),
        ({"files": files(b"not an image")}, 422, "invalid_input", "not an image"),
        ({"files": files(b"")}, 422, "invalid_input", "empty"),
        ({"files": files(png_bytes(sample())[:60])}, 422, "invalid_input", "truncated"),
        ({"files": files(*[png_bytes(sample())] * 4)}, 413, "payload_too_large", "4 images"),
        ({"files": files(b"\0" * 60_000)}, 413, "payload_too_large", "limit"),
        ({"files": files(big_png())}, 422, "invalid_input", "over the limit"),
        ({"data": {"top_k": "3"}}, 415, "unsupported_media_type", "x-www-form-urlencoded"),
        (
            {"content": b"--b--\r\n", "headers": {"content-type": "multipart/form-data; boundary=b"}},
            422,
            "invalid_input",
            "no images",
        ),
        (
            {"content": b"junk", "headers": {"content-type": "multipart/form-data"}},
            400,
            "bad_request",
            "boundary",
        ),
        (
            {"data": {"x": "1"}, "files": files(png_bytes(sample()))},
            422,
            "invalid_input",
            "unexpected form field",
        ),
        ({"json": {"images": []}}, 422, "invalid_input", "images"),
        ({"json": {"images": [[1, 2, 3]]}}, 422, "invalid_input", "28x28"),
        ({"json": {"images": [[[300] * 28] * 28]}}, 422, "invalid_input", "0-255"),
        ({"json": {"images": [[["a"] * 28] * 28]}}, 422, "invalid_input", "numeric"),
        ({"json": {"images": [[[0] * 28] * 28], "extra": 1}}, 422, "invalid_input", "extra"),
        ({"json": {"images": [[[0] * 28] * 28] * 4}}, 413, "payload_too_large", "4 images"),
        (
            {"content": b"{not json", "headers": {"content-type": "application/json"}},
            400,
            "bad_request",
            "JSON",
        ),
        ({"json": [1, 2]}, 422, "invalid_input", "request"),
        # one image without the outer list: 28 "images" of 28 values, once a 413 "over the limit"
        ({"json": {"images": [[0] * 28] * 28}}, 422, "invalid_input", "wrap it"),
    ],
)
def test_client_faults_are_json_4xx(
    client: TestClient, request_kwargs: dict, status: int, error: str, says: str
) -> None:
    body = assert_error(client.post("/predict", **request_kwargs), status)
    assert body["error"] == error
    assert says.lower() in body["message"].lower(), body["message"]


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("top_k=0", "top_k"),
        ("top_k=25", "top_k"),
        ("top_k=x", "top_k"),
        ("bogus=1", "bogus"),
        ("top_k=1&top_k=2", "more than once"),
        ("crop=middle", "crop"),
    ],
)
def test_bad_query_parameters_are_422(client: TestClient, query: str, says: str) -> None:
    body = assert_error(client.post(f"/predict?{query}", files=files(png_bytes(sample()))), 422)
    assert says in body["message"]


def test_unknown_path_and_method_are_json(client: TestClient) -> None:
    assert "/docs" in assert_error(client.get("/nope"), 404)["message"]
    assert_error(client.get("/predict"), 405)
    assert_error(client.delete("/health"), 405)


def test_page_docs_and_openapi_are_served_without_a_cdn(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert "fingerspell" in page.text
    for asset in ("/static/app.js", "/static/style.css"):
        assert client.get(asset).status_code == 200
    docs = client.get("/docs").text
    assert "cdn" not in docs.lower()
    assert "https://" not in docs.replace("https://fastapi", "")
    schema = client.get("/openapi.json").json()
    content = schema["paths"]["/predict"]["post"]["requestBody"]["content"]
    assert set(content) == {"multipart/form-data", "application/json"}
    assert "413" in schema["paths"]["/predict"]["post"]["responses"]


def test_one_access_log_line_per_request(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="fingerspell.serve.access"):
        client.get("/health")
        client.post("/predict", content=b"x", headers={"content-type": "text/plain"})
        client.get("/nope")
    lines = [r.getMessage() for r in caplog.records if r.name == "fingerspell.serve.access"]
    assert len(lines) == 3
    assert '"GET /health HTTP/1.1" 200' in lines[0]
    assert '"POST /predict HTTP/1.1" 415' in lines[1]
    assert '"GET /nope HTTP/1.1" 404' in lines[2]


def test_an_unexpected_error_is_one_json_500_logged_once(
    predictor: OnnxPredictor, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug is a JSON 500 with one traceback in the log, and the access line shows the answer sent.

    Starlette's own `Exception` handler answers and then re-raises, so the server logged the
    traceback a second time and the access line read "500 0B"; the client below re-raises
    whatever reaches it, as uvicorn would log it.
    """
    client = TestClient(create_app(predictor, SMALL))

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("a bug")

    monkeypatch.setattr(predictor, "predict_inputs", broken)
    with caplog.at_level(logging.INFO, logger="fingerspell.serve"):
        body = assert_error(client.post("/predict", files=files(png_bytes(sample()))), 500)
    assert body["message"] == "internal error; the server log has the details"
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(tracebacks) == 1
    assert "a bug" in str(tracebacks[0].exc_info[1])
    access = [r.getMessage() for r in caplog.records if r.name == "fingerspell.serve.access"]
    assert len(access) == 1
    assert '"POST /predict HTTP/1.1" 500 0B' not in access[0]
    assert '"POST /predict HTTP/1.1" 500 ' in access[0]


def test_settings_are_strict() -> None:
    with pytest.raises(ValueError, match="max_images"):
        ServeSettings(max_images=0)
    with pytest.raises(ValueError, match="Extra inputs"):
        ServeSettings(max_imgs=3)  # type: ignore[call-arg]
    assert json.loads(ServeSettings().model_dump_json())["default_top_k"] == 3


def test_crop_query_parameter_chooses_what_the_model_sees(client: TestClient) -> None:
    """`crop=auto` finds the off-centre hand; `crop=center` takes the centre square; JSON arrays ignore it."""

    buf = io.BytesIO()
    scene_with_hand(270, 170).save(buf, format="JPEG", quality=85)  # under the 50 kB test limit
    photo = buf.getvalue()
    views = {}
    for crop in ("auto", "center"):
        response = client.post(f"/predict?view=true&crop={crop}", files=files(photo))
        assert response.status_code == 200, response.text
        view = response.json()["predictions"][0]["view"]
        pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(view.split(",", 1)[1]))), np.float32)
        np.testing.assert_array_equal(
            pixels, np.clip(np.rint(image_bytes_to_input(photo, "x", crop=crop)), 0, 255)
        )
        views[crop] = pixels
    assert np.abs(views["auto"] - views["center"]).mean() > 5
    default = client.post("/predict?view=true", files=files(photo)).json()["predictions"][0]["view"]
    assert (
        default
        == client.post("/predict?view=true&crop=auto", files=files(photo)).json()["predictions"][0]["view"]
    )
    arrays = client.post("/predict?crop=center", json={"images": [sample().tolist()]})
    assert arrays.status_code == 200


def test_server_default_crop_is_a_setting(predictor: OnnxPredictor) -> None:
    centre = TestClient(create_app(predictor, ServeSettings(crop="center")))
    assert centre.get("/metadata").json()["crop"] == "center"
    with pytest.raises(ValueError):
        ServeSettings(crop="middle")  # type: ignore[arg-type]


def test_tta_query_parameter_averages_over_the_views(client: TestClient, predictor: OnnxPredictor) -> None:
    buf = io.BytesIO()
    scene_with_hand(270, 170).save(buf, format="JPEG", quality=85)
    photo = buf.getvalue()
    response = client.post("/predict?tta=true&view=true&top_k=24", files=files(photo))
    assert response.status_code == 200, response.text
    answer = response.json()["predictions"][0]
    expected = predictor.predict_proba_views(image_bytes_to_input(photo, "x", tta=True)[None])[0]
    got = {t["letter"]: t["probability"] for t in answer["top_k"]}
    for i, letter in enumerate(predictor.letters):
        assert got[letter] == pytest.approx(float(expected[i]), abs=1e-6)
    plain_view = client.post("/predict?view=true", files=files(photo)).json()["predictions"][0]["view"]
    assert answer["view"] == plain_view, "the page shows the usual crop, not one of the zoomed views"
    plain = client.post("/predict?tta=false&top_k=24", files=files(photo)).json()["predictions"][0]
    assert {t["letter"]: t["probability"] for t in plain["top_k"]} != got
    arrays = client.post("/predict?tta=true", json={"images": [sample().tolist()]}).json()["predictions"][0]
    assert arrays["probability"] == pytest.approx(
        float(predictor.predict_proba(sample()[None].astype(np.float32)).max()), abs=1e-6
    ), "a 28x28 array is one view already"
    assert "tta" in assert_error(client.post("/predict?tta=maybe", files=files(photo)), 422)["message"]


def test_server_default_tta_is_a_setting(predictor: OnnxPredictor) -> None:
    app = TestClient(create_app(predictor, ServeSettings(tta=True)))
    assert app.get("/metadata").json()["tta"] is True
    assert TestClient(create_app(predictor)).get("/metadata").json()["tta"] is False
