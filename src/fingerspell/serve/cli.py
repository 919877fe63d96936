"""`fingerspell-serve [MODEL] --host --port --workers`: the HTTP service on uvicorn.

Uvicorn handles SIGTERM/SIGINT gracefully: it stops accepting, lets requests in flight finish
(up to `--graceful-timeout` seconds) and exits 0.
"""

import argparse
import errno
import logging
import os
import socket
import sys
from collections.abc import Sequence
from typing import Any

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, ValidationError

from fingerspell.cli_parser import OneLineParser
from fingerspell.inference.images import CROPS, ImageError, quiet_bomb_warning
from fingerspell.inference.model_source import resolve_model_path
from fingerspell.inference.predictor import ModelError, OnnxPredictor
from fingerspell.serve.app import create_app
from fingerspell.serve.settings import ServeSettings

COMMAND = "fingerspell-serve"
ENV_CONFIG = "FINGERSPELL_SERVE_CONFIG"  # how the parent hands the config to worker processes
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
MAX_PORT = 65535


class WorkerConfig(BaseModel):
    """Everything a worker process needs to build the same app as the parent."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    # One onnxruntime thread per worker: a batch-1 request gains nothing from more under load,
    # and spinning threads took ~45% more CPU per request (benchmarks/serve_load.py); scale
    # with --workers instead.
    threads: int = 1
    unsure_threshold: float | None = None
    log_level: str = "info"
    settings: ServeSettings = ServeSettings()


def build_app(config: WorkerConfig) -> FastAPI:
    """Load the model and build the app (in the parent for one worker, in each worker otherwise)."""
    logging.basicConfig(level=config.log_level.upper(), format=LOG_FORMAT, stream=sys.stderr)
    quiet_bomb_warning()
    predictor = OnnxPredictor(config.model, threads=config.threads, unsure_threshold=config.unsure_threshold)
    return create_app(predictor, config.settings)


def app_from_env() -> FastAPI:
    """Uvicorn factory for `--workers > 1`: each worker reads the config the parent checked."""
    return build_app(WorkerConfig.model_validate_json(os.environ[ENV_CONFIG]))


def port_number(text: str) -> int:
    """`--port`: 1-65535. 0 ("any free port") is refused: the log would not say which port it got."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number; give one in 1-{MAX_PORT}") from None
    if not 1 <= port <= MAX_PORT:
        raise argparse.ArgumentTypeError(f"{port} is not a port; give one in 1-{MAX_PORT}, e.g. 8000")
    return port


def check_can_bind(host: str, port: int, workers: int = 1) -> None:
    """Bind host:port once and let go, so a busy port or bad host is one line, not uvicorn's log block.

    Binds as uvicorn will: with one worker through asyncio (every address the host resolves to,
    IPv6 sockets IPv6-only); with several, one socket it opens itself before forking (IPv6 when
    the host has a ':', else IPv4, dual-stack). SO_REUSEADDR in both, so a port a stopped server
    left in TIME_WAIT counts as free. A server that takes the port in the moment between this
    check and uvicorn's bind still gets uvicorn's own error.

    Raises:
        ValueError: the one line saying what is wrong and what to do.
    """
    try:
        if workers > 1:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            addresses = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[
                :1
            ]
        else:  # asyncio reads "" as every interface, like None
            addresses = socket.getaddrinfo(
                host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )
    except (socket.gaierror, UnicodeError) as err:  # UnicodeError: a label too long for IDNA
        reason = err.strerror if isinstance(err, socket.gaierror) else "not a valid host name"
        raise ValueError(
            f"--host {host}: not an address this machine can listen on ({reason}); "
            "use 127.0.0.1, 0.0.0.0 or one of its own addresses"
        ) from err
    for family, kind, proto, _, address in addresses:
        try:
            sock = socket.socket(family, kind, proto)
        except OSError:
            continue  # e.g. no IPv6 here: asyncio skips such an address as well
        with sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6 and workers == 1:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(address)
            except OSError as err:
                raise ValueError(_bind_fault(host, port, err)) from err


def _bind_fault(host: str, port: int, err: OSError) -> str:
    """The bind error as what to do about it; the errno text alone ("Address already in use") says less."""
    host = host or "every interface"
    if err.errno == errno.EADDRINUSE:
        return f"port {port} is in use on {host}; pick another with --port"
    if err.errno == errno.EACCES:
        return f"port {port} on {host} needs more privileges (ports below 1024 usually do); pick another with --port"
    if err.errno == errno.EADDRNOTAVAIL:
        return f"--host {host}: not an address of this machine; use 127.0.0.1, 0.0.0.0 or one of its own addresses"
    return f"cannot listen on {host} port {port} ({err.strerror or err})"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options; limits left unset keep `ServeSettings` defaults (one place for them)."""
    parser = OneLineParser(prog=COMMAND, description="HTTP API and web page over a fingerspell ONNX model.")
    parser.add_argument(
        "model",
        nargs="?",
        default="models/model.onnx",
        help="ONNX path or MLflow URI (models:/fingerspell-onnx@champion)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0 for all interfaces)")
    parser.add_argument(
        "--port", type=port_number, default=8000, help=f"TCP port, 1-{MAX_PORT} (default 8000)"
    )
    parser.add_argument("--workers", type=int, default=1, help="worker processes, each with its own model")
    parser.add_argument(
        "--threads", type=int, default=None, help="onnxruntime threads per worker (default 1)"
    )
    parser.add_argument("--unsure-threshold", type=float, default=None, help="override the model's threshold")
    parser.add_argument("--max-upload-bytes", type=int, default=None, help="largest request body")
    parser.add_argument("--max-images", type=int, default=None, help="most images per request")
    parser.add_argument("--max-pixels", type=int, default=None, help="largest image (width x height)")
    parser.add_argument(
        "--crop",
        choices=CROPS,
        default=None,
        help="photo to 28x28 unless a request says: auto finds the hand first (default), center the centre square",
    )
    parser.add_argument(
        "--tta",
        action="store_true",
        default=None,
        help="average each photo over 8 views (crops at 0-15%% margin, mirrored) unless a request says",
    )
    parser.add_argument(
        "--graceful-timeout", type=float, default=30.0, help="seconds to finish requests on SIGTERM"
    )
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return parser.parse_args(argv)


def _config(args: argparse.Namespace) -> WorkerConfig:
    limits = {
        key: value
        for key, value in {
            "max_upload_bytes": args.max_upload_bytes,
            "max_images": args.max_images,
            "max_pixels": args.max_pixels,
            "crop": args.crop,
            "tta": args.tta,
        }.items()
        if value is not None
    }
    if args.workers < 1:
        raise ValueError(f"--workers {args.workers}: must be at least 1")
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads {args.threads}: must be at least 1")
    if not args.graceful_timeout >= 0:  # NaN too
        raise ValueError(f"--graceful-timeout {args.graceful_timeout}: must be 0 or more seconds")
    path = resolve_model_path(args.model)
    optional = {"threads": args.threads} if args.threads is not None else {}
    return WorkerConfig(
        model=str(path),
        unsure_threshold=args.unsure_threshold,
        log_level=args.log_level,
        settings=ServeSettings(**limits),
        **optional,
    )


def _one_line(err: Exception) -> str:
    if isinstance(err, ValidationError):
        first = err.errors()[0]
        return f"--{str(first['loc'][-1]).replace('_', '-')}: {first['msg']}"
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def main(argv: Sequence[str] | None = None) -> None:
    """Check the model and options, then serve until SIGTERM/SIGINT."""
    args = parse_args(argv)
    try:
        config = _config(args)
        app: Any = build_app(config)  # fails here, with one line, before any port is bound
        check_can_bind(
            args.host, args.port, args.workers
        )  # after the model load: the least time for another to take it
    except (ModelError, ImageError, ValidationError, ValueError, OSError) as err:
        print(f"{COMMAND}: error: {_one_line(err)}", file=sys.stderr)  # noqa: T201 - CLI output
        sys.exit(1)
    factory = False
    if args.workers > 1:
        os.environ[ENV_CONFIG] = config.model_dump_json()
        app, factory = "fingerspell.serve.cli:app_from_env", True
    uvicorn.run(
        app,
        factory=factory,
        host=args.host,
        port=args.port,
        workers=args.workers,
        access_log=False,  # our middleware writes one line per request
        log_level=args.log_level,
        timeout_graceful_shutdown=args.graceful_timeout,
        server_header=False,
    )


if __name__ == "__main__":
    main()
