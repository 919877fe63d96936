"""The FastAPI app: health, readiness, metadata, predict, the web page and its docs."""

import functools
import json
from importlib.resources import files
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline

import fingerspell
from fingerspell.inference.predictor import OnnxPredictor
from fingerspell.serve.access_log import AccessLogMiddleware
from fingerspell.serve.errors import install_error_handlers
from fingerspell.serve.inputs import in_worker_threads, read_items, read_options, view_png
from fingerspell.serve.schemas import (
    UNSURE_ADVICE,
    ArrayRequest,
    ErrorBody,
    ItemPrediction,
    LetterScore,
    PredictOptions,
    PredictResponse,
)
from fingerspell.serve.settings import ServeSettings

STATIC_DIR = files("fingerspell.serve") / "static"

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in {
        400: "malformed body (bad JSON, broken multipart)",
        413: "body, image count or image size over the limits (see /metadata)",
        415: "content type other than multipart/form-data or application/json",
        422: "not an image, wrong array shape or values, unknown parameter",
    }.items()
}

PREDICT_BODY = {
    "parameters": [
        {
            "name": name,
            "in": "query",
            "required": False,
            "schema": schema,
            "description": schema.get("description"),
        }
        for name, schema in PredictOptions.model_json_schema()["properties"].items()
    ],
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {"type": "array", "items": {"type": "string", "format": "binary"}}
                    },
                    "required": ["file"],
                }
            },
            "application/json": {"schema": ArrayRequest.model_json_schema()},
        },
    },
}


def _metadata(predictor: OnnxPredictor, settings: ServeSettings) -> dict[str, Any]:
    meta = predictor.metadata.to_dict()
    raw_input = predictor.metadata.raw.get("fingerspell.input")
    try:
        meta["input"] = json.loads(raw_input) if raw_input else None
    except json.JSONDecodeError:
        meta["input"] = raw_input
    meta["unsure_threshold"] = predictor.unsure_threshold
    meta["service_version"] = fingerspell.__version__
    meta["limits"] = settings.model_dump(exclude={"crop", "tta"})
    meta["crop"] = settings.crop
    meta["tta"] = settings.tta
    return meta


def create_app(predictor: OnnxPredictor, settings: ServeSettings | None = None) -> FastAPI:
    """The service over a loaded predictor; limits from `settings` (defaults if None)."""
    settings = settings or ServeSettings()
    app = FastAPIOffline(  # /docs and /redoc with bundled assets: no CDN, works offline
        title="fingerspell",
        version=fingerspell.__version__,
        description="Reads the 24 static ASL fingerspelling letters from photos of a hand.",
    )
    app.state.predictor = predictor
    app.state.settings = settings
    install_error_handlers(app)
    app.add_middleware(AccessLogMiddleware)
    predictor.predict(np.zeros((1, 28, 28), np.float32))  # warm up: the first request is not slow
    metadata = _metadata(predictor, settings)

    @app.api_route("/health", methods=["GET", "HEAD"], summary="the process is alive")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready", summary="the model is loaded and answers")
    async def ready() -> Response:
        # The app is built only once the model has loaded and answered the warm-up call above,
        # so a process that answers at all is ready; with --workers, uvicorn starts serving a
        # worker only after its app is built.
        return Response('{"status":"ready"}', media_type="application/json")

    @app.get("/metadata", summary="letters, input spec, run id, version and limits")
    async def get_metadata() -> dict[str, Any]:
        return metadata

    @app.post(
        "/predict",
        summary="the letter and top-k probabilities for each image",
        response_model=PredictResponse,
        responses=ERRORS,
        openapi_extra=PREDICT_BODY,
    )
    async def predict(request: Request) -> Response:
        # Decoding and the model run in the thread pool, not on the event loop: one request of
        # 16 large photos takes seconds, and /health and other requests must still answer.
        # Query parsed here, not as a FastAPI dependency: a third of the framework time per
        # request (profiled under benchmarks/serve_load.py).
        options = read_options(request)
        items = await read_items(request, settings, options.crop, options.tta)
        answers = await in_worker_threads(
            request,
            functools.partial(predictor.predict_inputs, top_k=options.top_k or settings.default_top_k),
            [pixels for _, pixels in items],
        )
        body = PredictResponse(
            predictions=[
                ItemPrediction(
                    name=name,
                    letter=answer.letter,
                    probability=answer.probability,
                    unsure=answer.unsure,
                    advice=UNSURE_ADVICE if answer.unsure else None,
                    top_k=[LetterScore(letter=letter, probability=p) for letter, p in answer.top_k],
                    view=view_png(pixels) if options.view else None,
                )
                for (name, pixels), answer in zip(items, answers, strict=True)
            ]
        )
        return Response(body.model_dump_json(exclude_none=True), media_type="application/json")

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(str(STATIC_DIR / "index.html"), media_type="text/html")

    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    return app
