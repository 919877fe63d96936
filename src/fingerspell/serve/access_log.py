"""One access-log line per request, as plain ASGI middleware (cheaper than BaseHTTPMiddleware).

It also answers an unexpected error itself: Starlette's own handler for `Exception` sits outside
every middleware and re-raises after answering, so uvicorn logged the traceback a second time
and this line read "500 0B". Here the error is logged once and the line shows the real answer.
"""

import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fingerspell.serve.errors import internal_error
from fingerspell.serve.errors import log as errors

log = logging.getLogger("fingerspell.serve.access")


class AccessLogMiddleware:
    """Logs `client "METHOD path HTTP/x" status bytes ms` once each HTTP request has been answered."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        state: dict[str, Any] = {"status": 500, "bytes": 0, "started": False}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"], state["started"] = message["status"], True
            elif message["type"] == "http.response.body":
                state["bytes"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            if state["started"]:  # too late for an answer of our own: let the server close it
                raise
            errors.exception("unhandled error on %s %s", scope.get("method", "-"), scope.get("path", ""))
            await internal_error()(scope, receive, send_wrapper)
        finally:
            client = scope.get("client")
            path = scope.get("path", "")
            if scope.get("query_string"):
                path += "?" + scope["query_string"].decode("latin-1")
            log.info(
                '%s "%s %s HTTP/%s" %d %dB %.1fms',
                f"{client[0]}:{client[1]}" if client else "-",
                scope.get("method", "-"),
                path,
                scope.get("http_version", "1.1"),
                state["status"],
                state["bytes"],
                (time.perf_counter() - start) * 1000,
            )
