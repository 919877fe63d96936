"""MLflow side of the export: resolve a model URI to files and a run, log the ONNX model back.

All MLflow calls of the export live here (style rule: MLflow in one place). MLflow is
imported lazily so that importing the export package stays cheap.
"""

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

ONNX_ARTIFACT = "onnx"
_MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>[^/]+))$")


@dataclass(frozen=True)
class ResolvedSource:
    """An MLflow model URI downloaded: local files, the run that made them, and registry facts."""

    local_path: Path
    run_id: str | None
    registered_name: str | None = None
    version: str | None = None
    aliases: tuple[str, ...] = field(default_factory=tuple)


@contextmanager
def _tracking(uri: str | None) -> Iterator[None]:
    """Point MLflow at `uri` (store and registry) for the block, then restore the previous one."""
    import mlflow

    if uri is None:
        yield
        return
    previous_tracking, previous_registry = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous_tracking)
        mlflow.set_registry_uri(previous_registry)


def resolve_source(uri: str, dst: Path, tracking_uri: str | None = None) -> ResolvedSource:
    """Download `runs:/<id>/<path>` or `models:/<name>@<alias>` (or `/<version>`) into `dst`.

    Raises:
        ValueError: the URI is malformed or MLflow does not know it (one line for the user).
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    with _tracking(tracking_uri):
        client = mlflow.MlflowClient()
        try:
            name = version = None
            aliases: tuple[str, ...] = ()
            if uri.startswith("models:/"):
                match = _MODELS_URI.match(uri)
                logged_id = uri[len("models:/") :]
                if not match and logged_id and "/" not in logged_id:  # MLflow 3 logged-model id
                    run_id = mlflow.get_logged_model(logged_id).source_run_id
                elif not match:
                    raise ValueError(f"{uri}: expected models:/<name>@<alias> or models:/<name>/<version>")
                else:
                    name, alias, number = match["name"], match["alias"], match["version"]
                    mv = (
                        client.get_model_version_by_alias(name, alias)
                        if alias
                        else client.get_model_version(name, number)
                    )
                    run_id, version, aliases = mv.run_id, str(mv.version), tuple(mv.aliases or ())
            elif uri.startswith("runs:/"):
                run_id = uri[len("runs:/") :].split("/", 1)[0]
                if not run_id:
                    raise ValueError(f"{uri}: expected runs:/<run_id>/<artifact path>")
            else:
                raise ValueError(f"{uri}: not an MLflow model URI (runs:/... or models:/...)")
            dst.mkdir(parents=True, exist_ok=True)
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(dst)))
        except MlflowException as err:
            raise ValueError(
                f"{uri}: not found in MLflow at {mlflow.get_tracking_uri()} ({_first(err)})"
            ) from err
    return ResolvedSource(local, run_id, name, version, aliases)


def source_aliases(run_id: str, tracking_uri: str | None = None) -> tuple[str, ...]:
    """Aliases held by registered versions made from `run_id` (the ONNX copy inherits them)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    with _tracking(tracking_uri):
        client = mlflow.MlflowClient()
        try:
            found = client.search_model_versions(f"run_id = '{run_id}'")
            # search results leave `aliases` empty; the version itself carries them
            versions = [client.get_model_version(mv.name, mv.version) for mv in found]
        except MlflowException:
            return ()
    return tuple(sorted({alias for mv in versions for alias in (mv.aliases or ())}))


def log_onnx_model(
    model_path: Path,
    run_id: str,
    tracking_uri: str | None,
    registered_name: str | None,
    aliases: tuple[str, ...] = (),
    artifacts: tuple[Path, ...] = (),
    example: Any = None,
) -> dict[str, str | None]:
    """Log `model_path` with the `onnx` flavour into run `run_id`, register it, copy `aliases`.

    Returns:
        `model_uri`, and `registered_name`/`version` when registered.
    """
    import mlflow
    import mlflow.onnx
    import onnx
    from mlflow.exceptions import MlflowException

    with _tracking(tracking_uri):
        try:
            signature = _signature(model_path, example) if example is not None else None
            with mlflow.start_run(run_id=run_id):
                info = mlflow.onnx.log_model(
                    onnx.load(str(model_path)),
                    name=ONNX_ARTIFACT,
                    registered_model_name=registered_name,
                    signature=signature,
                    save_as_external_data=False,
                )
                for path in artifacts:
                    if Path(path).is_file():
                        mlflow.log_artifact(str(path), artifact_path="export")
            version = str(info.registered_model_version) if info.registered_model_version else None
            if registered_name and version:
                client = mlflow.MlflowClient()
                for alias in aliases:
                    client.set_registered_model_alias(registered_name, alias, version)
        except MlflowException as err:
            raise ValueError(f"MLflow run {run_id}: cannot log the ONNX model ({_first(err)})") from err
    log.info("logged %s to run %s as %s (version %s)", model_path, run_id, info.model_uri, version)
    return {
        "model_uri": info.model_uri,
        "registered_name": registered_name if version else None,
        "version": version,
    }


def _signature(model_path: Path, example: Any) -> Any:
    """Tensor signature from one real run of the model on `example` (N, 1, 28, 28) float32."""
    import onnxruntime as ort
    from mlflow.models import infer_signature

    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    outputs = dict(zip(names, session.run(None, {"image": example}), strict=True))
    return infer_signature({"image": example}, outputs)


def _first(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:200] if text else type(err).__name__
