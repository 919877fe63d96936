"""Request body -> model inputs, under the service limits (bytes, image count, pixels).

The image path is the shared one (`fingerspell.inference.images`), so the service sees exactly
what `fingerspell-predict` sees.
"""

import base64
import functools
import io
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import numpy as np
from PIL import Image
from pydantic import ValidationError
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.types import Message, Receive

from fingerspell.inference.images import (
    MODEL_SIZE,
    Crop,
    ImageError,
    array_to_input,
    image_bytes_to_input,
    main_view,
)
from fingerspell.inference.reading import PhotoStyle
from fingerspell.serve.errors import ApiError, first_line, simplify
from fingerspell.serve.schemas import ArrayRequest, PredictOptions
from fingerspell.serve.settings import ServeSettings

Item = tuple[str, np.ndarray]  # (name, (28, 28) float32 0-255, or (V, 28, 28) test-time views)
T = TypeVar("T")
ACCEPTED = 'multipart/form-data (image files) or application/json ({"images": [28x28 arrays]})'


DEFAULT_OPTIONS = PredictOptions()


def read_options(request: Request) -> PredictOptions:
    """Query parameters (`top_k`, `view`, `crop`, `tta`), strictly: an unknown one is a 422, not silently ignored."""
    if not request.url.query:
        return DEFAULT_OPTIONS
    params = request.query_params
    repeated = [key for key in params if len(params.getlist(key)) > 1]
    if repeated:
        raise ApiError(422, f"query parameter {repeated[0]!r} given more than once")
    try:
        return PredictOptions.model_validate(dict(params))
    except ValidationError as err:
        errors = [{**e, "loc": ["query", *e["loc"]]} for e in simplify(list(err.errors()))]
        raise ApiError(422, first_line(errors), errors) from err


def _limited(receive: Receive, limit: int) -> Receive:
    """Wrap `receive` so a body over `limit` bytes stops with 413 as soon as it gets there."""
    size = 0

    async def inner() -> Message:
        nonlocal size
        message = await receive()
        if message["type"] == "http.request":
            size += len(message.get("body", b""))
            if size > limit:
                raise ApiError(413, f"request body over the limit of {limit:,} bytes; send smaller images")
        return message

    return inner


def _check_length(request: Request, limit: int) -> None:
    header = request.headers.get("content-length")
    if header is None:
        return
    if not header.isdigit():
        raise ApiError(400, f"Content-Length {header!r} is not a number")
    if int(header) > limit:
        raise ApiError(
            413, f"request body is {int(header):,} bytes, over the limit of {limit:,}; send smaller images"
        )


def _check_count(count: int, settings: ServeSettings) -> None:
    if count == 0:
        raise ApiError(422, "no images in the request; send one or more image files (e.g. -F file=@hand.png)")
    if count > settings.max_images:
        raise ApiError(
            413, f"{count} images in one request, over the limit of {settings.max_images}; split it"
        )


WORK_THREADS = 2  # decodes and model runs at once per worker: a 40 MP photo takes ~170 MB to decode


async def in_worker_threads(request: Request, func: Callable[..., T], *args: Any) -> T:
    """`func(*args)` in a thread, at most WORK_THREADS at a time per app.

    Not anyio's default pool of 40: forty 40 MP decodes at once need ~7 GB, and two cores gain
    nothing from more than two.
    """
    state = request.app.state
    if getattr(state, "work_limiter", None) is None:  # made on first use: it needs the running loop
        state.work_limiter = anyio.CapacityLimiter(WORK_THREADS)
    return await anyio.to_thread.run_sync(functools.partial(func, *args), limiter=state.work_limiter)


def _decode_all(
    files: list[tuple[str, bytes]], max_pixels: int, crop: Crop, tta: bool, style: PhotoStyle
) -> list[Item]:
    return [(name, image_bytes_to_input(data, name, max_pixels, crop, tta, style)) for name, data in files]


async def _from_multipart(request: Request, settings: ServeSettings, crop: Crop, tta: bool) -> list[Item]:
    form = await request.form()
    try:
        extra = [key for key, value in form.multi_items() if not isinstance(value, UploadFile)]
        if extra:
            raise ApiError(
                422, f"unexpected form field {extra[0]!r}; send images as files (-F file=@hand.png)"
            )
        uploads = [value for _, value in form.multi_items() if isinstance(value, UploadFile)]
        _check_count(len(uploads), settings)
        files = [(upload.filename or f"file[{i}]", await upload.read()) for i, upload in enumerate(uploads)]
        # off the event loop: a large photo takes seconds to decode, and /health must still answer
        style = request.app.state.predictor.metadata.photo_style
        return await in_worker_threads(request, _decode_all, files, settings.max_pixels, crop, tta, style)
    except ImageError as err:
        raise ApiError(422, str(err)) from err
    finally:
        await form.close()


def _only_numbers(values: object, name: str) -> object:
    """JSON pixels must be JSON numbers: numpy would read "12" as 12 and true as 1 without a word."""
    stack = [values]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, bool) or not isinstance(node, int | float):
            kind = "true/false" if isinstance(node, bool) else type(node).__name__.replace("NoneType", "null")
            raise ImageError(f"{name}: values must be numeric (grey levels 0-255), found {kind} {node!r}")
    return values


def _one_unwrapped_image(images: list[Any]) -> bool:
    """28 rows of 28 numbers: one image sent as `images` itself (a 413 "28 images" would mislead)."""
    return len(images) == MODEL_SIZE and all(
        isinstance(row, list) and len(row) == MODEL_SIZE and all(not isinstance(v, list) for v in row)
        for row in images
    )


async def _from_json(request: Request, settings: ServeSettings) -> list[Item]:
    body = await request.body()
    try:
        parsed = ArrayRequest.model_validate_json(body)
    except ValidationError as err:
        errors = simplify(list(err.errors()))
        if any(e["type"] == "json_invalid" for e in errors):
            raise ApiError(400, f"request body is not valid JSON ({errors[0]['msg']})") from err
        raise ApiError(422, first_line(errors), errors) from err
    if _one_unwrapped_image(parsed.images):
        raise ApiError(
            422,
            'images holds one 28x28 array itself, not a list of them; wrap it: {"images": [[[...], ...]]}',
        )
    _check_count(len(parsed.images), settings)
    try:
        return [
            (f"images[{i}]", array_to_input(_only_numbers(values, f"images[{i}]"), f"images[{i}]"))
            for i, values in enumerate(parsed.images)
        ]
    except ImageError as err:
        raise ApiError(422, str(err)) from err


async def read_items(
    request: Request, settings: ServeSettings, crop: Crop | None = None, tta: bool | None = None
) -> list[Item]:
    """Every image in the request as a model input, or an `ApiError` saying what is wrong.

    Uploaded photos are cropped by `crop` and into test-time views by `tta` (defaults: the
    server's); JSON arrays are 28x28 already.
    """
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in ("multipart/form-data", "application/json"):
        shown = content_type or "none"
        raise ApiError(415, f"content type {shown} not accepted; send {ACCEPTED}")
    _check_length(request, settings.max_upload_bytes)
    limited = Request(request.scope, _limited(request.receive, settings.max_upload_bytes))
    if content_type == "application/json":
        return await _from_json(limited, settings)
    return await _from_multipart(
        limited, settings, crop or settings.crop, settings.tta if tta is None else tta
    )


def view_png(pixels: np.ndarray) -> str:
    """The 28x28 model input as a PNG data URL, so the page shows exactly what the model saw.

    Of test-time views, the plain crop at the usual margin.
    """
    img = Image.fromarray(np.clip(np.rint(main_view(pixels)), 0, 255).astype(np.uint8), "L")
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
