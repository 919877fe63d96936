"""Photos that are hard to read (odd modes, slow to decode) through the app: an answer, never a 500,
and never a stalled event loop."""

import io
import threading
from pathlib import Path

import anyio
import httpx
import numpy as np
import pytest
from PIL import Image

from fingerspell.inference.predictor import OnnxPredictor
from fingerspell.serve import ServeSettings, create_app
from fingerspell.serve import inputs as serve_inputs


@pytest.fixture(scope="module")
def predictor(tiny_onnx: Path) -> OnnxPredictor:
    return OnnxPredictor(tiny_onnx)


def encode(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


def post(app, *blobs: bytes, query: str = "") -> httpx.Response:  # type: ignore[no-untyped-def]
    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            files = [("file", (f"img{i}", blob, "application/octet-stream")) for i, blob in enumerate(blobs)]
            return await client.post("/predict" + query, files=files)

    return anyio.run(send)


def test_odd_modes_are_read_like_the_plain_picture(  # a LAB TIFF was a 500, 16-bit grey read as white
    predictor: OnnxPredictor,
) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (56, 56)).astype(np.uint8)
    plain = encode(Image.fromarray(pixels), "PNG")
    sixteen = encode(Image.fromarray(pixels.astype(np.uint16) * 257), "PNG")
    lab = encode(Image.fromarray(pixels).convert("RGB").convert("LAB"), "TIFF")
    app = create_app(predictor, ServeSettings())
    response = post(app, plain, sixteen, lab, query="?crop=center&top_k=24")
    assert response.status_code == 200, response.text
    answers = [{t["letter"]: t["probability"] for t in p["top_k"]} for p in response.json()["predictions"]]
    for other in answers[1:]:
        assert other.keys() == answers[0].keys()
        assert max(abs(other[k] - answers[0][k]) for k in other) < 0.02


@pytest.mark.parametrize("phase", ["decode", "predict"])
def test_work_does_not_block_the_event_loop(
    predictor: OnnxPredictor, monkeypatch: pytest.MonkeyPatch, phase: str
) -> None:
    """While one request's photos decode (or run through the model), /health answers: the work
    runs in worker threads."""
    started, release = threading.Event(), threading.Event()
    released: list[bool] = []

    def held(real):  # type: ignore[no-untyped-def]
        def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
            started.set()
            released.append(release.wait(5))  # False: nobody released it, the loop was stuck here
            return real(*args, **kwargs)

        return wrapper

    if phase == "decode":
        monkeypatch.setattr(serve_inputs, "image_bytes_to_input", held(serve_inputs.image_bytes_to_input))
    else:
        monkeypatch.setattr(predictor, "predict_inputs", held(predictor.predict_inputs))
    app = create_app(predictor, ServeSettings())
    blob = encode(Image.new("L", (28, 28), 128), "PNG")
    results: dict[str, httpx.Response] = {}

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:

            async def predict() -> None:
                results["predict"] = await client.post(
                    "/predict", files=[("file", ("a.png", blob, "image/png"))]
                )

            async with anyio.create_task_group() as group:
                group.start_soon(predict)
                await anyio.to_thread.run_sync(started.wait, 5)
                results["health"] = await client.get("/health")
                release.set()

    anyio.run(scenario)
    assert released == [True], f"the {phase} was still waiting when /health answered"
    assert results["health"].status_code == 200
    assert results["predict"].status_code == 200, results["predict"].text


def test_at_most_work_threads_decode_at_once(
    predictor: OnnxPredictor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eight requests of large photos at once decode two at a time, not forty (anyio's default pool):
    a 40 MP photo takes ~170 MB to decode."""
    running, most = [0], [0]
    lock = threading.Lock()
    real = serve_inputs.image_bytes_to_input

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            threading.Event().wait(0.05)  # long enough for the others to pile up
            return real(*args, **kwargs)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(serve_inputs, "image_bytes_to_input", counted)
    app = create_app(predictor, ServeSettings())
    blob = encode(Image.new("L", (28, 28), 128), "PNG")

    async def scenario() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        codes: list[int] = []
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:

            async def predict() -> None:
                response = await client.post("/predict", files=[("file", ("a.png", blob, "image/png"))])
                codes.append(response.status_code)

            async with anyio.create_task_group() as group:
                for _ in range(8):
                    group.start_soon(predict)
        return codes

    assert anyio.run(scenario) == [200] * 8
    assert most[0] == serve_inputs.WORK_THREADS
