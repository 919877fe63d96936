"""Every endpoint and every error case against a real `fingerspell-serve` on 127.0.0.1."""

import io
import json
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.fixtures.serve import KnownImage, LiveServer, start_server, stop_server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def multipart(*images: KnownImage) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("file", (f"{im.letter}.png", im.png, "image/png")) for im in images]


def test_health_ready_metadata_docs_page(live_server: LiveServer) -> None:
    url = live_server.url
    assert httpx.get(f"{url}/health").json() == {"status": "ok"}
    assert httpx.get(f"{url}/ready").json() == {"status": "ready"}
    meta = httpx.get(f"{url}/metadata").json()
    assert len(meta["letters"]) == 24
    assert meta["input"]["shape"] == [None, 1, 28, 28]
    assert "run_id" in meta
    assert meta["limits"]["max_images"] == 4
    docs = httpx.get(f"{url}/docs")
    assert docs.status_code == 200
    assert "swagger-ui" in docs.text
    assert "/predict" in httpx.get(f"{url}/openapi.json").json()["paths"]
    page = httpx.get(f"{url}/")
    assert page.status_code == 200
    assert 'id="file-input"' in page.text


def test_known_letters_over_multipart_and_json(
    live_server: LiveServer, known_images: list[KnownImage]
) -> None:
    response = httpx.post(f"{live_server.url}/predict?top_k=3", files=multipart(*known_images))
    assert response.status_code == 200, response.text
    answers = response.json()["predictions"]
    assert [a["letter"] for a in answers] == [im.letter for im in known_images]
    assert all(len(a["top_k"]) == 3 and a["top_k"][0]["letter"] == a["letter"] for a in answers)
    body = {"images": [im.pixels.tolist() for im in known_images]}
    answers = httpx.post(f"{live_server.url}/predict", json=body).json()["predictions"]
    assert [a["letter"] for a in answers] == [im.letter for im in known_images]


def test_curl_upload_as_in_the_readme(
    live_server: LiveServer, known_images: list[KnownImage], tmp_path: Path
) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl not installed")
    hand = tmp_path / "hand.png"
    hand.write_bytes(known_images[0].png)
    out = subprocess.run(
        ["curl", "-s", "-F", f"file=@{hand}", f"{live_server.url}/predict"], capture_output=True, check=True
    ).stdout
    assert json.loads(out)["predictions"][0]["letter"] == known_images[0].letter


def png_of_size(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("L", (width, height), 200).save(buf, format="PNG")
    return buf.getvalue()


def chunks(total: int) -> Iterator[bytes]:
    """A multipart upload without Content-Length (chunked), so only the streaming limit can stop it."""
    yield b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'
    sent = 0
    while sent < total:
        yield b"\0" * 65536
        sent += 65536


ERROR_CASES = [
    ("415 text", {"content": b"hi", "headers": {"content-type": "text/plain"}}, 415),
    ("422 not an image", {"files": [("file", ("a.txt", b"hello", "text/plain"))]}, 422),
    (
        "413 too many images",
        {"files": [("file", (f"{i}.png", png_of_size(30, 30), "image/png")) for i in range(5)]},
        413,
    ),
    ("413 body by length", {"files": [("file", ("big.png", b"\0" * 300_000, "image/png"))]}, 413),
    (
        "413 body chunked",
        {"content": chunks(400_000), "headers": {"content-type": "multipart/form-data; boundary=x"}},
        413,
    ),
    ("422 too many pixels", {"files": [("file", ("wide.png", png_of_size(1001, 1000), "image/png"))]}, 422),
    ("400 bad json", {"content": b"{", "headers": {"content-type": "application/json"}}, 400),
    ("422 bad array", {"json": {"images": [[1, 2]]}}, 422),
    ("422 extra json key", {"json": {"images": [[[0] * 28] * 28], "top": 1}}, 422),
    (
        "422 int beyond any float",
        {
            "content": b'{"images":[[[1' + b"0" * 400 + b"]]]}",
            "headers": {"content-type": "application/json"},
        },
        422,
    ),
]


@pytest.mark.parametrize(("case", "kwargs", "status"), ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_client_faults_get_json_4xx(live_server: LiveServer, case: str, kwargs: dict, status: int) -> None:
    response = httpx.post(f"{live_server.url}/predict", timeout=10, **kwargs)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == status
    assert body["message"]
    assert "\n" not in body["message"]
    # the server is still fine afterwards
    assert httpx.get(f"{live_server.url}/health").status_code == 200


def json_image_with(number: str) -> bytes:
    """A JSON body of one black 28x28 image whose top-left pixel is `number`, written as given."""
    rows = [",".join(["0"] * 28)] * 28
    rows[0] = ",".join([number] + ["0"] * 27)
    return ('{"images":[[' + ",".join(f"[{r}]" for r in rows) + "]]}").encode()


@pytest.mark.parametrize(
    "number",
    ["1" + "0" * 400, str(2**1100), "-" + str(2**1100), "1e400", "1e300", "256"],
    ids=["10**400", "2**1100", "-2**1100", "1e400", "1e300", "256"],
)
def test_any_number_beyond_0_255_gets_the_same_422(live_server: LiveServer, number: str) -> None:
    response = httpx.post(
        f"{live_server.url}/predict",
        content=json_image_with(number),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["message"] == "images[0]: values must be finite grey levels in 0-255"


@pytest.mark.parametrize(
    ("number", "found"),
    [('"12"', "str '12'"), ("true", "true/false True"), ("null", "null None"), ('{"v": 1}', "dict {'v': 1}")],
    ids=["string", "bool", "null", "object"],
)
def test_a_pixel_that_is_not_a_json_number_gets_a_422_naming_it(
    live_server: LiveServer, number: str, found: str
) -> None:
    """numpy would read "12" as 12 and true as 1: the service refuses them instead of guessing."""
    response = httpx.post(
        f"{live_server.url}/predict",
        content=json_image_with(number),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert (
        response.json()["message"] == f"images[0]: values must be numeric (grey levels 0-255), found {found}"
    )


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/nope", 404), ("GET", "/predict", 405), ("POST", "/predict?top_k=0", 422)],
)
def test_routing_faults_get_json_4xx(live_server: LiveServer, method: str, path: str, status: int) -> None:
    response = httpx.request(method, f"{live_server.url}{path}", json={"images": [[[0] * 28] * 28]})
    assert response.status_code == status
    assert response.json()["status"] == status


def test_one_access_log_line_per_request(live_server: LiveServer) -> None:
    marker = uuid.uuid4().hex
    httpx.get(f"{live_server.url}/health?m={marker}")
    httpx.post(f"{live_server.url}/predict?m={marker}", content=b"x", headers={"content-type": "text/plain"})
    httpx.get(f"{live_server.url}/nope?m={marker}")
    time.sleep(0.2)
    lines = [line for line in live_server.log_text().splitlines() if marker in line]
    assert len(lines) == 3, lines
    assert [line.split('" ')[1].split()[0] for line in lines] == ["200", "422", "404"]


def test_sigterm_lets_the_request_in_flight_finish(
    serve_model: Path, known_images: list[KnownImage], tmp_path: Path
) -> None:
    server = start_server(serve_model, tmp_path)
    try:
        request = httpx.Request("POST", f"{server.url}/predict", files=multipart(known_images[0]))
        body = request.read()
        head = f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: {request.headers['content-type']}\r\n"
        head += f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        port = int(server.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(head.encode() + body[: len(body) // 2])  # the request is now in flight
            time.sleep(0.3)
            server.proc.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            assert server.proc.poll() is None, "server exited with a request in flight"
            sock.sendall(body[len(body) // 2 :])
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
        status_line, _, rest = reply.partition(b"\r\n")
        assert b" 200 " in status_line, reply[:300]
        answer = json.loads(rest.split(b"\r\n\r\n", 1)[1])
        assert answer["predictions"][0]["letter"] == known_images[0].letter
        # uvicorn re-raises the signal after its graceful shutdown: exit by SIGTERM, not a crash
        assert server.proc.wait(10) in (0, -signal.SIGTERM)
        assert "Finished server process" in server.log_text()
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{server.url}/health", timeout=1)
    finally:
        stop_server(server)


def test_several_workers_serve_and_stop_on_sigterm(
    serve_model: Path, known_images: list[KnownImage], tmp_path: Path
) -> None:
    server = start_server(serve_model, tmp_path, "--workers", "2", "--threads", "1")
    try:
        for _ in range(4):  # spread over both workers
            answers = httpx.post(f"{server.url}/predict", files=multipart(*known_images)).json()[
                "predictions"
            ]
            assert [a["letter"] for a in answers] == [im.letter for im in known_images]
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(20) in (0, -signal.SIGTERM)
        assert server.log_text().count("Finished server process") >= 2  # both workers
    finally:
        stop_server(server)
