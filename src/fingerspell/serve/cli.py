"""`fingerspell-serve [MODEL] --host --port --workers`: the HTTP service on uvicorn.

Uvicorn handles SIGTERM/SIGINT gracefully: it stops accepting, lets requests in flight finish
(up to `--graceful-timeout` seconds) and exits 0.
"""

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, ValidationError

from fingerspell.inference.images import CROPS, ImageError
from fingerspell.inference.model_source import resolve_model_path
from fingerspell.inference.predictor import ModelError, OnnxPredictor
from fingerspell.serve.app import create_app
from fingerspell.serve.settings import ServeSettings

COMMAND = "fingerspell-serve"
ENV_CONFIG = "FINGERSPELL_SERVE_CONFIG"  # how the parent hands the config to worker processes
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


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
    predictor = OnnxPredictor(config.model, threads=config.threads, unsure_threshold=config.unsure_threshold)
    return create_app(predictor, config.settings)


def app_from_env() -> FastAPI:
    """Uvicorn factory for `--workers > 1`: each worker reads the config the parent checked."""
    return build_app(WorkerConfig.model_validate_json(os.environ[ENV_CONFIG]))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options; limits left unset keep `ServeSettings` defaults (one place for them)."""
    parser = argparse.ArgumentParser(
        prog=COMMAND, description="HTTP API and web page over a fingerspell ONNX model."
    )
    parser.add_argument(
        "model",
        nargs="?",
        default="models/model.onnx",
        help="ONNX path or MLflow URI (models:/fingerspell@champion)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0 for all interfaces)")
    parser.add_argument("--port", type=int, default=8000)
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
