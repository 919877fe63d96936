"""Error handling: every client fault becomes a JSON 4xx with one clear line, never a 500."""

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    500: "internal_error",
}


class ApiError(Exception):
    """A fault the client can fix, with the status to answer it with."""

    def __init__(self, status: int, message: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors


def error_response(status: int, message: str, errors: list[dict[str, Any]] | None = None) -> JSONResponse:
    """The one JSON error shape: `{status, error, message[, errors]}`."""
    body: dict[str, Any] = {"status": status, "error": CODES.get(status, "error"), "message": message}
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status)


def simplify(errors: list[Any]) -> list[dict[str, Any]]:
    """Pydantic errors without the echoed input (which may be a whole image)."""
    return [
        {
            "loc": [str(part) for part in err.get("loc", ())],
            "msg": err.get("msg", ""),
            "type": err.get("type"),
        }
        for err in errors
    ]


def first_line(errors: list[dict[str, Any]]) -> str:
    """One line naming the first bad field, for the `message`."""
    err = errors[0]
    where = ".".join(part for part in err["loc"] if part not in ("body", "query")) or "request"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {err['msg']}{more}"


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)  # noqa: S101 - registered for ApiError only
    return error_response(exc.status, exc.message, exc.errors)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)  # noqa: S101 - registered for it only
    errors = simplify(list(exc.errors()))
    return error_response(422, first_line(errors), errors)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101 - registered for it only
    message = exc.detail if isinstance(exc.detail, str) else CODES.get(exc.status_code, "error")
    if exc.status_code == 404:
        message = f"no such endpoint: {request.method} {request.url.path}; see /docs"
    response = error_response(exc.status_code, message)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


def internal_error() -> JSONResponse:
    """The answer to a bug: the details go to the server log, not to the client.

    Sent by `AccessLogMiddleware`, not an `Exception` handler: Starlette's sits outside every
    middleware and re-raises after answering, so the server logged each traceback twice.
    """
    return error_response(500, "internal error; the server log has the details")


def install_error_handlers(app: FastAPI) -> None:
    """Register the JSON error answers on `app`."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
