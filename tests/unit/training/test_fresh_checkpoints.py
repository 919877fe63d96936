"""A fresh run moves the last run's checkpoints aside and gives them back if it saves none."""

from pathlib import Path

import pytest

from fingerspell.training.build import fresh_checkpoints

OLD = b"the last run's weights"


def old_run(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("best.ckpt", "last.ckpt"):
        (folder / name).write_bytes(OLD)
    return folder


def test_they_are_out_of_the_way_while_the_run_has_saved_nothing(tmp_path: Path) -> None:
    folder = old_run(tmp_path / "checkpoints")
    with fresh_checkpoints(folder):
        assert not (folder / "best.ckpt").exists(), "a resume must not find the last run's files"
        assert not (folder / "last.ckpt").exists()
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == {"best.ckpt": OLD, "last.ckpt": OLD}


def test_a_run_stopped_before_its_first_checkpoint_gives_them_back(tmp_path: Path) -> None:
    folder = old_run(tmp_path / "checkpoints")
    with pytest.raises(KeyboardInterrupt), fresh_checkpoints(folder):
        raise KeyboardInterrupt  # Ctrl-C in the first epoch
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == {"best.ckpt": OLD, "last.ckpt": OLD}


def save_then_crash(folder: Path) -> None:
    with fresh_checkpoints(folder):
        (folder / "last.ckpt").write_bytes(b"new")
        raise RuntimeError("crashed in epoch 3")


def test_once_the_run_saves_the_old_ones_go(tmp_path: Path) -> None:
    folder = old_run(tmp_path / "checkpoints")
    with pytest.raises(RuntimeError, match="epoch 3"):
        save_then_crash(folder)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == {"last.ckpt": b"new"}


def test_a_first_run_has_nothing_to_keep(tmp_path: Path) -> None:
    folder = tmp_path / "checkpoints"
    with fresh_checkpoints(folder):
        pass
    assert not folder.exists()
