"""HTTP service and web page over the exported ONNX model (FastAPI on uvicorn).

Imports no torch, Lightning or MLflow: a serving machine needs only the `serve` extra.
"""

from fingerspell.serve.app import create_app
from fingerspell.serve.settings import ServeSettings

__all__ = ["ServeSettings", "create_app"]
