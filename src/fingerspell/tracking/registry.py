"""The model registry: every chosen model becomes a version of `fingerspell`; the best is `champion`."""

import logging
import math
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

log = logging.getLogger(__name__)

SCORE_TAG = "val_loss"  # model-version tag holding the score the champion is compared on


def current_champion(client: MlflowClient, name: str, alias: str) -> tuple[str, float] | None:
    """(version, val/loss) of the version holding `alias`, or None when there is none yet."""
    try:
        version = client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None
    score = version.tags.get(SCORE_TAG)
    return str(version.version), float(score) if score is not None else math.inf


def register(
    model_uri: str, run_id: str, val_loss: float, name: str, alias: str, promote: bool
) -> dict[str, Any]:
    """Register `model_uri` as a new version of `name`; move `alias` to it only if it is better.

    Better means a strictly lower `val/loss` than the current holder of the alias (validation
    data only: the test split never chooses). With `promote=False` the alias never moves.

    Returns:
        `{"name", "version", "val_loss", "champion": bool, "previous_champion"}`.
    """
    client = MlflowClient()
    version = mlflow.register_model(
        model_uri, name, tags={SCORE_TAG: repr(float(val_loss)), "run_id": run_id}
    )
    previous = current_champion(client, name, alias)
    wins = promote and (previous is None or float(val_loss) < previous[1])
    if wins:
        client.set_registered_model_alias(name, alias, str(version.version))
    log.info(
        "registered %s version %s (val/loss %.5f); %s",
        name,
        version.version,
        val_loss,
        f"now @{alias}" if wins else f"@{alias} stays on version {previous[0] if previous else '-'}",
    )
    return {
        "name": name,
        "version": str(version.version),
        "val_loss": float(val_loss),
        "champion": bool(wins),
        "previous_champion": previous[0] if previous else None,
    }
