"""The Hydra commands besides `fingerspell-train` end a bad override in one line, before any work.

A typo'd key used to print Hydra's 7-line report, a word where a number belongs gave Python's
"invalid literal for int()" without the key (and `quantize.enabled=maybe` was silently true), and
a negative opset, repeat count or tolerance was accepted (a mislabelled model, a shifted
threshold) or refused only after half a minute of export.
Each case runs the console script's `main()` in-process and checks that nothing was written.
"""

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from fingerspell import evaluate, preprocess
from fingerspell.export import cli as export_cli

COMMANDS: dict[str, Callable[[], None]] = {
    "fingerspell-export": export_cli.main,
    "fingerspell-evaluate": evaluate.main,
    "fingerspell-preprocess": preprocess.main,
}


@pytest.mark.parametrize(
    ("command", "override", "expected"),
    [
        (
            "fingerspell-export",
            "calibration.temprature=true",
            "no config key 'calibration.temprature' (a typo?",
        ),
        ("fingerspell-evaluate", "batch_sise=3", "no config key 'batch_sise' (a typo?"),
        ("fingerspell-preprocess", "data.val_fractoin=0.1", "no config key 'data.val_fractoin' (a typo?"),
        ("fingerspell-export", "opset=-1", "opset=-1 must be in 18-"),
        ("fingerspell-export", "opset=17", "opset=17 must be in 18-"),
        ("fingerspell-export", "calibration.repeats=-1", "calibration.repeats=-1 must be >= 1"),
        (
            "fingerspell-export",
            "calibration.target_accuracy=1.5",
            "calibration.target_accuracy=1.5 must be in (0, 1]",
        ),
        ("fingerspell-export", "calibration.threshold=-0.2", "calibration.threshold=-0.2 must be in [0, 1]"),
        ("fingerspell-export", "parity.atol=-1", "parity.atol=-1 must be > 0"),
        (
            "fingerspell-export",
            "quantize.calibration_samples=0",
            "quantize.calibration_samples=0 must be >= 1",
        ),
        (
            "fingerspell-export",
            "quantize.max_accuracy_drop=nan",
            "quantize.max_accuracy_drop=nan must be >= 0",
        ),
        (
            "fingerspell-export",
            "calibration.max_accuracy_drop=-1",
            "calibration.max_accuracy_drop=-1 must be >= 0",
        ),
        ("fingerspell-export", "opset=abc", "opset='abc' must be a whole number"),
        (
            "fingerspell-export",
            "grey_weights=[1,1,1]",
            "grey_weights=[1, 1, 1] must be 3 numbers >= 0 (red, green, blue) that add up to 1",
        ),
        ("fingerspell-export", "grey_weights=green", "grey_weights='green' must be 3 numbers >= 0"),
        ("fingerspell-export", "dim_background=1.5", "dim_background=1.5 must be a number in [0, 1]"),
        ("fingerspell-export", "dim_background=lots", "dim_background='lots' must be a number"),
        ("fingerspell-export", "quantize.enabled=maybe", "quantize.enabled='maybe' must be true or false"),
        ("fingerspell-export", "calibration.repeats=2.5", "calibration.repeats=2.5 must be a whole number"),
        ("fingerspell-evaluate", "batch_size=abc", "batch_size='abc' must be a whole number"),
        ("fingerspell-preprocess", "data.val_fraction=abc", "data.val_fraction='abc' must be a number"),
        ("fingerspell-preprocess", "data.custom=yes", "data.custom='yes' must be true or false"),
        ("fingerspell-preprocess", "data.split_seed=-1", "data.split_seed=-1 must be a whole number >= 0"),
        ("fingerspell-evaluate", "batch_size=-1", "batch_size=-1 must be a whole number >= 1"),
        ("fingerspell-evaluate", "speed.latency_runs=0", "speed.latency_runs=0 must be a whole number >= 1"),
        # once found only after the timing runs, with eval.json already rewritten
        (
            "fingerspell-evaluate",
            "robustness.corruptions=[rotation,rotaton]",
            "robustness.corruptions: unknown corruption 'rotaton'; choose from rotation, shift,",
        ),
        (
            "fingerspell-evaluate",
            "robustness.corruptions=rotation",
            "robustness.corruptions='rotation' must be a list of names",
        ),
        ("fingerspell-evaluate", "robustness.corruptions=null", "robustness.corruptions=null must be a list"),
        ("fingerspell-evaluate", "robustness.corruptions=[]", "robustness.corruptions is empty"),
    ],
)
def test_bad_override_is_one_line_exit_1_and_writes_nothing(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: str,
    override: str,
    expected: str,
) -> None:
    out = tmp_path / "out"
    outputs = {
        "fingerspell-export": [
            f"output={out}/model.onnx",
            f"int8_output={out}/model.int8.onnx",
            f"report={out}/export.json",
        ],
        "fingerspell-evaluate": [f"outputs.eval={out}/eval.json", f"model_path={tmp_path}/none.onnx"],
        "fingerspell-preprocess": [f"paths.processed_dir={out}/processed"],
    }[command]
    argv = [command, override, *outputs, f"hydra.run.dir={tmp_path}/hydra"]
    monkeypatch.setattr(sys, "argv", argv)
    monkeypatch.setenv("HYDRA_FULL_ERROR", "0")  # run_hydra sets it; restored after the test
    with pytest.raises(SystemExit) as exit_:
        COMMANDS[command]()
    assert exit_.value.code == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{command}: error: ")
    assert expected in lines[0]
    assert not out.exists()
