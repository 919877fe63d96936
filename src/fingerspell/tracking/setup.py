"""Where runs are recorded, and a fast check that the store can be reached before training."""

import contextlib
import os
import sqlite3
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import mlflow
from mlflow import MlflowClient


class TrackingError(RuntimeError):
    """The MLflow store cannot be used; the message is one line for the user."""


def repo_root() -> Path:
    """The folder holding `dvc.yaml`, searched upwards from the working directory (else the cwd)."""
    cwd = Path.cwd().resolve()
    parts = cwd.parts
    for i in range(len(parts) - 2):
        # `dvc exp run --temp/--queue` runs in <repo>/.dvc/tmp/exps/...: log to the user's store
        if parts[i : i + 3] == (".dvc", "tmp", "exps"):
            return Path(*parts[:i])
    for folder in (cwd, *cwd.parents):
        if (folder / "dvc.yaml").is_file():
            return folder
    return cwd


def tracking_uri() -> str:
    """`MLFLOW_TRACKING_URI` if set, else an absolute `sqlite:///<repo root>/mlflow.db`.

    Absolute, so a DVC queued experiment (run in a temp copy of the repo) still logs to the
    user's store; never Lightning's `./mlruns` file store, which recent MLflow refuses.
    """
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{repo_root() / 'mlflow.db'}"


def check_reachable(uri: str, timeout_s: float = 3.0) -> None:
    """Fail fast, with one line, when the store cannot be used (before any training starts).

    Raises:
        TrackingError: an HTTP server that does not answer its health check, or a sqlite
            file whose folder does not exist.
    """
    parsed = urlparse(uri)
    if parsed.scheme in ("http", "https"):
        url = uri.rstrip("/") + "/health"
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 (http(s) only)
                response.read(64)
        except (urllib.error.URLError, OSError, ValueError) as err:
            reason = getattr(err, "reason", err)
            raise TrackingError(
                f"MLflow server {uri} is unreachable ({reason}); start it, fix MLFLOW_TRACKING_URI, "
                "or train without tracking: logger=none"
            ) from err
    elif parsed.scheme == "sqlite":
        path = Path(uri.removeprefix("sqlite:///"))
        if not path.parent.is_dir():
            raise TrackingError(
                f"MLflow store {uri}: folder {path.parent} does not exist; create it or fix the URI"
            )
        if path.exists():
            _check_sqlite(uri, path)
    elif parsed.scheme in ("", "file"):
        raise TrackingError(
            f"MLflow tracking URI {uri!r} is a file store, which MLflow 3 refuses; "
            "use sqlite:///<path>/mlflow.db or an http(s) server"
        )


def _check_sqlite(uri: str, path: Path) -> None:
    """An existing store file must be an SQLite database (sqlalchemy's error is a page long)."""
    try:
        # as a URI, read-only: nothing is created; as_uri() escapes '#', '?' and '%' in the path
        with contextlib.closing(sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)) as db:
            db.execute("PRAGMA schema_version").fetchone()
    except sqlite3.Error as err:
        raise TrackingError(
            f"MLflow store {uri} is not a database MLflow can open ({err}); move the file aside "
            "or point MLFLOW_TRACKING_URI at another store"
        ) from err


def use_store(uri: str | None = None) -> MlflowClient:
    """Point MLflow's fluent API (and the registry) at `uri` and return a client on it."""
    uri = uri or tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(os.environ.get("MLFLOW_REGISTRY_URI") or uri)
    return MlflowClient(uri)


def experiment_id(client: MlflowClient, name: str) -> str:
    """The id of experiment `name`, created when missing (tolerating a parallel job creating it)."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    try:
        return str(client.create_experiment(name))
    except mlflow.exceptions.MlflowException:
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return str(found.experiment_id)
