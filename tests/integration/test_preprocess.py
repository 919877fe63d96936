"""The preprocess stage as a user meets it: the CLI on bad input, and real `dvc repro` on a fresh clone."""

import hashlib
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from fingerspell.configs import CONFIG_DIR
from fingerspell.data.labels import LABELS, LETTERS
from fingerspell.data.processed import load_meta, load_split
from tests.conftest import PINNED_FINGERPRINT, REPO_ROOT, copy_repo
from tests.fixtures.data import (
    OFFICIAL_TEST_COUNTS,
    OFFICIAL_TRAIN_COUNTS,
    TEST_CSV,
    TRAIN_CSV,
    csv_bytes,
    csv_row,
    make_csv,
    tiny_split,
    write_zip,
)

BIN = Path(sys.executable).parent
CLI = "fingerspell-preprocess"
CORRUPT_LINE = 1000  # file line of the train CSV row the corrupted mirror breaks


def env() -> dict[str, str]:
    """The venv's console scripts first on PATH (DVC runs the stage command through the shell)."""
    return os.environ | {"PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "DVC_NO_ANALYTICS": "1"}


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


# ---------------------------------------------------------------- (a) the CLI on bad input


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A folder with a previous `data/processed/` that every failed run must leave alone."""
    out = tmp_path / "data" / "processed"
    out.mkdir(parents=True)
    (out / "meta.json").write_text('{"previous": true}\n')
    (out / "train.npz").write_bytes(b"previous train split")
    return tmp_path


def run_cli(workdir: Path, *overrides: str, as_dvc: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the stage's command; `as_dvc`: on params.yaml, as `dvc repro` does, else on conf/train.yaml."""
    config = ["--config-dir", str(REPO_ROOT), "--config-name", "params"] if as_dvc else []
    return subprocess.run(
        [
            str(BIN / CLI),
            *config,
            "paths.processed_dir=data/processed",
            "hydra.run.dir=logs/preprocess",
            "hydra.output_subdir=null",
            *overrides,
        ],
        cwd=workdir,
        env=env(),
        capture_output=True,
        text=True,
        timeout=180,
    )


def bad_csv_zip(workdir: Path) -> Path:
    labels, images = tiny_split(2, seed=1)
    rows = [csv_row(label, image.ravel()) for label, image in zip(labels, images, strict=True)]
    rows[20] = csv_row(3, [0] * 300 + [256] + [0] * 483)
    test = csv_bytes(*tiny_split(1, seed=2))
    return write_zip(
        workdir / "mirror.zip", {f"sign_mnist_train/{TRAIN_CSV}": make_csv(rows), TEST_CSV: test}
    )


def prepare(case: str, workdir: Path) -> list[str]:
    """Craft the bad input of `case` in `workdir`; return the CLI overrides that point at it."""
    if case == "not-a-zip":
        (workdir / "raw.zip").write_bytes(b"<html>rate limited</html>")
        return ["paths.raw_archive=raw.zip"]
    if case == "pixel-256":
        return [f"paths.raw_archive={bad_csv_zip(workdir)}", "data.custom=true"]
    assert case == "bad-val-fraction"
    return ["data.val_fraction=1.5"]


# one per layer: archive, CSV content (with its line), config; the other kinds are unit-tested
CLI_CASES = {
    "not-a-zip": r"raw\.zip: not a readable zip archive .*re-download",
    "pixel-256": rf"mirror\.zip:sign_mnist_train/{TRAIN_CSV}: line 22: pixel301=256 is out of range 0-255",
    "bad-val-fraction": r"data\.val_fraction=1\.5 must be between 0 and 1",
}


def check_one_line_failure(
    result: subprocess.CompletedProcess[str], pattern: str, workdir: Path, before: dict[str, bytes]
) -> None:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{result.stderr}"
    assert lines[0].startswith(f"{CLI}: error: ")
    assert re.search(pattern, lines[0]), lines[0]
    assert "Traceback" not in result.stdout + result.stderr
    assert files_of(workdir / "data" / "processed") == before
    assert sorted(p.name for p in (workdir / "data").iterdir()) == ["processed"], "no temp folder left"


@pytest.mark.slow  # a few seconds each: every run starts Hydra
@pytest.mark.parametrize("case", list(CLI_CASES))
def test_cli_bad_input_one_line_nonzero_exit_output_untouched(workdir: Path, case: str) -> None:
    overrides = prepare(case, workdir)
    before = files_of(workdir / "data" / "processed")
    check_one_line_failure(run_cli(workdir, *overrides), CLI_CASES[case], workdir, before)


@pytest.mark.slow
def test_cli_with_the_root_config_too(workdir: Path) -> None:
    # what a user types: no --config-name, so conf/train.yaml with all its groups
    overrides = prepare("pixel-256", workdir)
    before = files_of(workdir / "data" / "processed")
    result = run_cli(workdir, *overrides, as_dvc=False)
    check_one_line_failure(result, CLI_CASES["pixel-256"], workdir, before)


@pytest.mark.slow
def test_cli_writes_processed_on_good_input(workdir: Path) -> None:
    source = write_zip(
        workdir / "good.zip",
        {TRAIN_CSV: csv_bytes(*tiny_split(10, 1)), TEST_CSV: csv_bytes(*tiny_split(2, 2))},
    )
    result = run_cli(workdir, f"paths.raw_archive={source}", "data.custom=true", "data.split_seed=3")
    assert result.returncode == 0, result.stderr
    meta = load_meta(workdir / "data" / "processed")
    assert meta["rows"] == {"train": 216, "val": 24, "test": 48}
    assert meta["split_seed"] == 3


# ---------------------------------------------------------------- params.yaml and SOURCE.md


def test_params_yaml_is_the_composed_train_config(tmp_path: Path) -> None:
    from dvc.utils.hydra import compose_and_dump

    composed = tmp_path / "params.yaml"
    compose_and_dump(str(composed), CONFIG_DIR, None, "train", str(REPO_ROOT), [])
    expected = yaml.safe_load(composed.read_text())
    actual = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    assert actual == expected, "params.yaml is stale: run 'make params' after changing conf/"


def test_pinned_fingerprint_is_the_configured_one() -> None:
    conf = yaml.safe_load((REPO_ROOT / "conf" / "data" / "sign_mnist.yaml").read_text())
    assert conf["fingerprint"] == PINNED_FINGERPRINT
    assert conf["custom"] is False


def test_official_counts_match_source_md(mirror_zip: Path) -> None:
    source_md = mirror_zip.parent / "SOURCE.md"
    if not source_md.is_file():
        pytest.skip(f"{source_md} not found")
    text = source_md.read_text()
    for split, counts in (("train", OFFICIAL_TRAIN_COUNTS), ("test", OFFICIAL_TEST_COUNTS)):
        block = re.search(rf"Per-class counts, {split}:(.*?)\.\n", text, re.DOTALL)
        assert block, f"no {split} counts in {source_md}"
        parsed = {int(k): int(v) for k, v in re.findall(r"(\d+):(\d+)", block.group(1))}
        assert parsed == counts
    assert sum(OFFICIAL_TRAIN_COUNTS.values()) == 27_455
    assert sum(OFFICIAL_TEST_COUNTS.values()) == 7_172


# ---------------------------------------------------------------- (b) real `dvc repro` on a fresh clone


def dvc(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=repo, env=env(), capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def pipeline_repo(mirror_zip: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A fresh copy of the repo pointed at the mirror, after one real `dvc repro preprocess`."""
    repo = copy_repo(tmp_path_factory.mktemp("clone"))
    assert not (repo / "data" / "raw").exists(), "a fresh clone has no data"
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    setup = dvc(repo, "remote", "modify", "--local", "upstream", "url", str(mirror_zip))
    assert setup.returncode == 0, setup.stderr
    result = dvc(repo, "repro", "preprocess")
    assert result.returncode == 0, result.stdout + result.stderr
    return repo, result.stdout + result.stderr


@pytest.mark.slow
@pytest.mark.e2e
def test_fresh_clone_repro_fetches_and_preprocesses(pipeline_repo: tuple[Path, str]) -> None:
    repo, log = pipeline_repo
    assert "Importing 'remote://upstream'" in log
    assert "Running stage 'preprocess'" in log
    out = repo / "data" / "processed"
    assert sorted(p.name for p in out.iterdir()) == ["meta.json", "test.npz", "train.npz", "val.npz"]
    meta = load_meta(out)
    splits = {split: load_split(out, split) for split in ("train", "val", "test")}
    assert len(splits["train"][1]) + len(splits["val"][1]) == 27_455
    assert len(splits["test"][1]) == 7_172
    assert meta["rows"] == {split: len(labels) for split, (_, labels) in splits.items()}
    train_counts = np.bincount(np.concatenate([splits["train"][1], splits["val"][1]]), minlength=24)
    test_counts = np.bincount(splits["test"][1], minlength=24)
    assert dict(zip(LABELS, train_counts.tolist(), strict=True)) == OFFICIAL_TRAIN_COUNTS
    assert dict(zip(LABELS, test_counts.tolist(), strict=True)) == OFFICIAL_TEST_COUNTS
    for split in ("train", "val", "test"):
        counted = np.bincount(splits[split][1], minlength=24)
        assert meta["counts"][split] == {LETTERS[i]: int(n) for i, n in enumerate(counted)}
    assert meta["fingerprint"] == PINNED_FINGERPRINT
    assert meta["dataset"] == "sign-mnist"
    assert meta["val_fraction"] == 0.1
    assert meta["split_seed"] == 42
    assert meta["duplicates"] == {"train_duplicates": 0, "test_duplicates": 0, "train_test_overlap": 0}
    for images, labels in splits.values():
        assert images.dtype == np.uint8
        assert images.shape[1:] == (1, 28, 28)
        assert labels.dtype == np.int64


@pytest.mark.slow
@pytest.mark.e2e
def test_fresh_output_matches_the_committed_lock(pipeline_repo: tuple[Path, str]) -> None:
    repo, _ = pipeline_repo

    def processed_md5(lock: Path) -> str:
        stage = yaml.safe_load(lock.read_text())["stages"]["preprocess"]
        return next(o["md5"] for o in stage["outs"] if o["path"] == "data/processed")

    assert processed_md5(repo / "dvc.lock") == processed_md5(REPO_ROOT / "dvc.lock"), (
        "preprocess is not reproducible, or the committed dvc.lock is stale"
    )


@pytest.mark.slow
@pytest.mark.e2e
def test_dag_imports_before_preprocess(pipeline_repo: tuple[Path, str]) -> None:
    repo, _ = pipeline_repo
    dag = dvc(repo, "dag", "--dot", "preprocess")
    assert dag.returncode == 0, dag.stderr
    assert '"data.dvc" -> "preprocess"' in dag.stdout


@pytest.mark.slow
@pytest.mark.e2e
def test_second_repro_does_nothing(pipeline_repo: tuple[Path, str]) -> None:
    repo, _ = pipeline_repo
    out = repo / "data" / "processed"
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    lock = (repo / "dvc.lock").read_bytes()
    again = dvc(repo, "repro", "preprocess")
    assert again.returncode == 0, again.stderr
    assert "Running stage" not in again.stdout
    assert "Importing" not in again.stdout
    assert "Stage 'preprocess' didn't change, skipping" in again.stdout
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == stamps
    assert (repo / "dvc.lock").read_bytes() == lock


def corrupted_mirror(mirror: Path, dest: Path) -> Path:
    """The mirror with one train row cut short (its last cell lost), packed like upstream."""
    with zipfile.ZipFile(mirror) as archive:
        members = {Path(info.filename).name: archive.read(info) for info in archive.infolist()}
    lines = members[TRAIN_CSV].split(b"\r\n")
    lines[CORRUPT_LINE - 1] = lines[CORRUPT_LINE - 1].rsplit(b",", 1)[0]
    members[TRAIN_CSV] = b"\r\n".join(lines)
    nested = {
        f"{Path(name).stem}/{name}" if name.endswith(".csv") else name: data for name, data in members.items()
    }
    return write_zip(dest, nested, zipfile.ZIP_STORED)


@pytest.mark.slow
@pytest.mark.e2e
def test_corrupted_mirror_fails_cleanly_and_keeps_the_output(
    pipeline_repo: tuple[Path, str], mirror_zip: Path, tmp_path: Path
) -> None:
    # runs last in this module: it re-points the clone's source at a damaged copy
    repo, _ = pipeline_repo
    out = repo / "data" / "processed"
    before = {name: hashlib.sha256(data).hexdigest() for name, data in files_of(out).items()}
    bad = corrupted_mirror(mirror_zip, tmp_path / "bad-mirror.zip")
    assert dvc(repo, "remote", "modify", "--local", "upstream", "url", str(bad)).returncode == 0
    result = dvc(repo, "repro", "preprocess")
    log = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Importing 'remote://upstream'" in log, "the changed source is fetched again"
    errors = [line for line in log.splitlines() if line.startswith(f"{CLI}: error: ")]
    assert len(errors) == 1, log
    assert f"sign_mnist_train/{TRAIN_CSV}: line {CORRUPT_LINE}: 784 columns, expected 785" in errors[0]
    assert "Traceback" not in log
    assert {name: hashlib.sha256(data).hexdigest() for name, data in files_of(out).items()} == before
    assert sorted(p.name for p in (repo / "data").iterdir()) == ["processed", "raw"], "no partial output left"
