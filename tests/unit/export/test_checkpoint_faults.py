"""A file that is not a fingerspell checkpoint is named with the reason in one line.

The export stage reads `source=`; a truncated download, a text file or another project's
PyTorch file each used to end in a traceback or a bare number ("not a fingerspell checkpoint (101)").
"""

import pathlib
from pathlib import Path

import pytest
import torch

from fingerspell.export.source import load_checkpoint

ADVICE = "pass a .ckpt written by fingerspell-train (dvc repro train) or source=<MLflow URI>"


def _write(kind: str, path: Path) -> Path:
    if kind == "text":
        path.write_text("hello\n")
    elif kind == "random bytes":
        path.write_bytes(bytes(range(7, 256)) * 12)
    elif kind == "truncated":
        torch.save({"weights": torch.zeros(4096)}, path)
        path.write_bytes(path.read_bytes()[:3000])
    elif kind == "other project":
        torch.save({"where": pathlib.PurePosixPath("/data")}, path)
    elif kind == "plain dict":
        torch.save({"a": 1}, path)
    return path


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("text", "not a fingerspell checkpoint, or a damaged one (KeyError"),
        (
            "random bytes",
            "not a fingerspell checkpoint, or a damaged one (UnpicklingError: not a PyTorch file)",
        ),
        ("truncated", "not a fingerspell checkpoint, or a damaged one ("),
        (
            "other project",
            "a PyTorch file that holds objects fingerspell-train never saves (pathlib.PurePosixPath)",
        ),
        (
            "plain dict",
            "not a fingerspell checkpoint, or a damaged one (KeyError: 'pytorch-lightning_version')",
        ),
    ],
)
def test_each_wrong_file_is_one_line_with_its_reason_and_what_to_pass(
    tmp_path: Path, kind: str, reason: str
) -> None:
    path = _write(kind, tmp_path / "model.ckpt")
    with pytest.raises(ValueError) as err:
        load_checkpoint(path)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: {reason}")
    assert message.endswith(ADVICE)
