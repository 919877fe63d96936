"""Fixtures every test can use: the real data mirror, real processed data, a private MLflow store.

Fixture groups owned by one area live in `tests/fixtures/<area>.py` and are loaded here.
"""

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fingerspell.data.preprocess import preprocess

REPO_ROOT = Path(__file__).resolve().parents[1]
MIRROR = Path(
    os.environ.get(
        "FINGERSPELL_MIRROR", REPO_ROOT.parent / "shared" / "data" / "sign-mnist" / "sign-language-mnist.zip"
    )
)
PINNED_FINGERPRINT = "cf38aebfaecd9acc25999b0aca943f62bd5bad1a94a46b21998cb24b17d59951"

pytest_plugins = [
    f"tests.fixtures.{path.stem}"
    for path in sorted((Path(__file__).parent / "fixtures").glob("*.py"))
    if path.stem != "__init__"
]


@pytest.fixture(scope="session")
def mirror_zip() -> Path:
    """The local mirror of the real data set; CI must have it, elsewhere tests needing it skip."""
    if not MIRROR.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"data mirror missing at {MIRROR}")
        pytest.skip(f"data mirror not found at {MIRROR}")
    return MIRROR


@pytest.fixture(scope="session")
def processed_dir(mirror_zip: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`data/processed` made by the real preprocess from the real archive, once per session."""
    out = tmp_path_factory.mktemp("processed") / "processed"
    preprocess(mirror_zip, out, val_fraction=0.1, split_seed=42, expected_fingerprint=PINNED_FINGERPRINT)
    return out


@pytest.fixture(autouse=True)
def _private_mlflow(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Every test logs to its own sqlite store, never the user's `mlflow.db`.

    The registry follows the tracking store, and MLflow's process-wide URIs are reset
    after each test, so a URI set in-process by one test never leaks into the next.
    """
    store = tmp_path_factory.mktemp("mlflow")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store / 'mlflow.db'}")
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    yield
    if "mlflow" in sys.modules:
        import mlflow

        mlflow.set_registry_uri(None)  # type: ignore[arg-type]
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]
    shutil.rmtree(store, ignore_errors=True)


def copy_repo(dest: Path) -> Path:
    """Copy the git-tracked and untracked-but-not-ignored files of the repo into `dest`.

    Used by tests that run real `dvc repro` in a throwaway checkout.
    """
    import subprocess

    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    for name in filter(None, files):
        src = REPO_ROOT / name.decode()
        if src.is_file():
            target = dest / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
    return dest
