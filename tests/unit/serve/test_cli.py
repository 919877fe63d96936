"""`fingerspell-serve` fails fast with one line, before binding a port, on anything a user can fix."""

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from fingerspell.serve import cli


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["{missing}"], "model not found"),
        (["{not_onnx}"], "not a loadable ONNX model"),
        (["{tiny}", "--workers", "0"], "--workers 0: must be at least 1"),
        (["{tiny}", "--threads", "0"], "--threads 0: must be at least 1"),
        (["{tiny}", "--max-images", "0"], "--max-images: Input should be greater than 0"),
        (["{tiny}", "--unsure-threshold", "2"], "must be in [0, 1]"),
        (["{tiny}", "--graceful-timeout", "-1"], "--graceful-timeout -1.0: must be 0 or more seconds"),
        (["{tiny}", "--graceful-timeout", "nan"], "--graceful-timeout nan: must be 0 or more seconds"),
        (
            ["{tiny}", "--max-pixels", "100000000"],
            "--max-pixels: Input should be less than or equal to 89478485",
        ),
        (["{folder}"], "is a folder; give the .onnx file in it"),
    ],
)
def test_user_faults_exit_1_with_one_line(
    args: list[str], says: str, tiny_onnx: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    not_onnx = tmp_path / "model.onnx"
    not_onnx.write_text("not a model")
    paths = {"missing": tmp_path / "nope.onnx", "not_onnx": not_onnx, "tiny": tiny_onnx, "folder": tmp_path}
    with pytest.raises(SystemExit) as exit_info:
        cli.main([a.format(**paths) for a in args])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("fingerspell-serve: error: "), err
    assert "\n" not in err
    assert says in err


def test_workers_rebuild_the_same_app_from_the_environment(
    tiny_onnx: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = cli._config(cli.parse_args([str(tiny_onnx), "--max-images", "2", "--threads", "1"]))
    monkeypatch.setenv(cli.ENV_CONFIG, config.model_dump_json())
    meta = TestClient(cli.app_from_env()).get("/metadata").json()
    assert meta["limits"]["max_images"] == 2
    assert meta["run_id"] == "tiny-run"


def test_default_model_is_models_model_onnx() -> None:
    assert cli.parse_args([]).model == "models/model.onnx"
