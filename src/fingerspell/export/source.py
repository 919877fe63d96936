"""Where the exported net comes from: the train stage's checkpoint or an MLflow model URI.

Whatever the source, the result is the same: the plain net plus the facts the ONNX file
must carry (letters, normalisation, training run, data fingerprint).
"""

import json
import logging
import pickle
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceModel:
    """A trained net ready to wrap, and what it was trained on."""

    net: nn.Module
    mean: float
    std: float
    letters: tuple[str, ...]
    run_id: str | None
    data_fingerprint: str | None
    tracking_uri: str | None
    aliases: tuple[str, ...] = ()
    origin: str = ""


def is_mlflow_uri(source: str) -> bool:
    """`runs:/...` and `models:/...` are MLflow; anything else is a checkpoint path."""
    return source.startswith(("runs:/", "models:/"))


def read_train_run(path: Path | None) -> dict[str, Any]:
    """`models/train_run.json` written by the train stage ({} when absent: a hand-made checkpoint)."""
    if path is None or not Path(path).is_file():
        return {}
    try:
        record = json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not valid JSON ({err}); rerun 'dvc repro train'") from err
    if not isinstance(record, dict):
        raise ValueError(
            f"{path}: expected a JSON object, found {type(record).__name__}; rerun 'dvc repro train'"
        )
    return record


def default_tracking_uri() -> str | None:
    """The project's MLflow store (the training code decides it), None to use MLflow's own."""
    try:
        from fingerspell.tracking.setup import tracking_uri
    except ImportError:
        return None
    return str(tracking_uri())


def from_module(module: nn.Module, data_letters: list[str], **facts: Any) -> SourceModel:
    """Build a `SourceModel` from a `FingerspellModule` or a logged `Normalized` net.

    A checkpoint's hparams name letters and normalisation; a plain logged net has only its
    `mean`/`std` buffers, and its letters are the data set's.
    """
    hp = dict(getattr(module, "hparams", {}) or {})
    mean = hp.get("mean", _buffer(module, "mean"))
    std = hp.get("std", _buffer(module, "std"))
    net = getattr(module, "net", None)
    if mean is None or std is None or not isinstance(net, nn.Module):
        raise ValueError(
            f"{facts.get('origin')}: not a fingerspell model (no net or normalisation); "
            "export a checkpoint from fingerspell-train"
        )
    fallback = facts.pop("data_fingerprint", None)  # what the model says it saw wins over the data dir
    fingerprint = hp.get("data_fingerprint") or hp.get("fingerprint") or fallback
    return SourceModel(
        net=net.eval(),
        mean=float(mean),
        std=float(std),
        letters=tuple(hp.get("letters") or data_letters),
        data_fingerprint=fingerprint,
        **facts,
    )


def _buffer(module: nn.Module, name: str) -> float | None:
    value = getattr(module, name, None)
    return float(value) if value is not None else None


def load_checkpoint(path: Path) -> nn.Module:
    """A `FingerspellModule` from a Lightning checkpoint, on the CPU."""
    from fingerspell.models.module import FingerspellModule

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: checkpoint not found; run 'dvc repro train' or pass source=<MLflow URI>"
        )
    try:
        return FingerspellModule.load_from_checkpoint(str(path), map_location="cpu").eval()
    except PermissionError as err:
        raise ValueError(
            f"{path}: cannot read the checkpoint ({err.strerror}); check its permissions"
        ) from err
    except (RuntimeError, KeyError, TypeError, EOFError, OSError, pickle.UnpicklingError) as err:
        # a truncated file fails in the zip reader (OSError), random bytes in the unpickler
        raise ValueError(_damaged(path, err)) from err


def _damaged(path: Path, err: BaseException) -> str:
    """Why a file is not a loadable checkpoint, in one line; torch's own text is a page of advice."""
    text = str(err).strip()
    detail = text.splitlines()[0][:160] if text else ""
    unsupported = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
    if unsupported:  # a real PyTorch file holding objects we never save (torch's safe loading)
        return (
            f"{path}: a PyTorch file that holds objects fingerspell-train never saves "
            f"({unsupported.group(1)}), so it is not loaded; "
            "pass a .ckpt written by fingerspell-train (dvc repro train) or source=<MLflow URI>"
        )
    if isinstance(err, pickle.UnpicklingError):
        detail = "not a PyTorch file"
    return (
        f"{path}: not a fingerspell checkpoint, or a damaged one ({type(err).__name__}: {detail}); "
        "pass a .ckpt written by fingerspell-train (dvc repro train) or source=<MLflow URI>"
    )


def _load_downloaded(local: Path, uri: str) -> nn.Module:
    """A module from downloaded MLflow artifacts: a Lightning checkpoint or a `pytorch`-flavour model."""
    if local.is_file() and local.suffix == ".ckpt":
        return load_checkpoint(local)
    if local.is_dir():
        if (local / "MLmodel").is_file():
            import mlflow.pytorch

            return mlflow.pytorch.load_model(str(local), map_location="cpu").eval()
        checkpoints = sorted(local.rglob("*.ckpt"))
        if checkpoints:
            best = [p for p in checkpoints if p.stem == "best"]
            return load_checkpoint((best or checkpoints)[0])
    raise ValueError(f"{uri}: holds neither a Lightning checkpoint nor a pytorch model; nothing to export")


def load_source(
    source: str, train_run_file: Path | None, data_letters: list[str], data_fingerprint: str | None
) -> SourceModel:
    """Load `source` (checkpoint path or MLflow URI) with its run id, aliases and data fingerprint."""
    from fingerspell.tracking.onnx_logging import resolve_source, source_aliases

    train_run = read_train_run(train_run_file)
    tracking_uri = train_run.get("tracking_uri") or default_tracking_uri()
    if not is_mlflow_uri(source):
        module = load_checkpoint(Path(source))
        run_id = train_run.get("run_id")
        aliases = source_aliases(run_id, tracking_uri) if run_id else ()
        return from_module(
            module,
            data_letters,
            run_id=run_id,
            tracking_uri=tracking_uri,
            aliases=aliases,
            origin=str(source),
            data_fingerprint=train_run.get("data_fingerprint") or data_fingerprint,
        )
    with tempfile.TemporaryDirectory(prefix="fingerspell-source-") as tmp:
        resolved = resolve_source(source, Path(tmp), tracking_uri)
        module = _load_downloaded(resolved.local_path, source)
    return from_module(
        module,
        data_letters,
        run_id=resolved.run_id,
        tracking_uri=tracking_uri,
        aliases=resolved.aliases,
        origin=source,
        data_fingerprint=data_fingerprint,
    )
