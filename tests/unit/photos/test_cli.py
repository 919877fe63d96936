"""Option checks of `fingerspell-evaluate-images` that need no model: they fail before one is loaded."""

from pathlib import Path

import pytest

from fingerspell.photos.cli import main


@pytest.mark.parametrize("value", ["2", "-0.1", "nan", "inf", "half"])
def test_threshold_outside_zero_one_is_a_usage_error(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    """predict and serve refuse such thresholds; a silent 'answers 0%' here would mislead."""
    with pytest.raises(SystemExit) as caught:
        main(["model.onnx", "photos", "--threshold", value])
    assert caught.value.code == 2
    (line,) = capsys.readouterr().err.splitlines()  # one line, not argparse's usage block above it
    assert line.startswith("fingerspell-evaluate-images: error: argument --threshold:")
    assert line.endswith("(see fingerspell-evaluate-images --help)")


def test_out_that_is_a_file_is_refused_before_the_model_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The model does not exist: the --out line must come first, so no evaluation ever runs in vain."""
    (tmp_path / "notes.md").write_text("keep me\n")
    code = main([str(tmp_path / "none.onnx"), str(tmp_path), "--out", str(tmp_path / "notes.md")])
    assert code == 2
    err = capsys.readouterr().err
    assert (
        err
        == f"fingerspell-evaluate-images: error: --out {tmp_path / 'notes.md'} is a file; give a folder for report.json and the plots\n"
    )
    assert (tmp_path / "notes.md").read_text() == "keep me\n"


def test_out_that_cannot_be_made_is_refused_and_nothing_is_left(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file").write_text("")
    out = tmp_path / "file" / "report"
    assert main([str(tmp_path / "none.onnx"), str(tmp_path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"fingerspell-evaluate-images: error: cannot write to --out {out}: ")
    assert len(err.splitlines()) == 1


def test_failed_evaluation_leaves_no_empty_out_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "reports" / "photos"
    assert main([str(tmp_path / "none.onnx"), str(tmp_path), "--out", str(out)]) == 1
    assert "model not found" in capsys.readouterr().err
    assert not (tmp_path / "reports").exists()
