"""The model's own metadata is its contract: a hand-edited or foreign file gets one line, not a crash.

A wrong temperature or threshold would not crash at all: it would reverse the ranking or hide
every answer behind `unsure`, so those are refused too.
"""

from pathlib import Path

import numpy as np
import pytest

from fingerspell.inference.cli import main
from fingerspell.inference.predictor import ModelError, OnnxPredictor
from tests.fixtures.serve import tiny_onnx_model

BAD = [
    ({"letters": None}, "no fingerspell metadata"),
    ({"letters": "not json"}, "metadata letters is not valid JSON"),
    ({"letters": "5"}, "metadata letters must be a list of letter names"),
    ({"letters": '"ABCDEFGHIKLMNOPQRSTUVWXY"'}, "metadata letters must be a list of letter names"),
    ({"letters": '["A", 2]'}, "metadata letters must be a list of letter names"),
    ({"input": "[1, 2]"}, "metadata input must be an object with a 'shape' list"),
    ({"input": '{"shape": null}'}, "metadata input must be an object with a 'shape' list"),
    ({"temperature": "abc"}, "metadata temperature is 'abc', expected a finite number over 0.001"),
    ({"temperature": "-1"}, "metadata temperature is '-1', expected a finite number over 0.001"),
    ({"temperature": "0"}, "metadata temperature is '0', expected a finite number over 0.001"),
    ({"temperature": "nan"}, "metadata temperature is 'nan'"),
    ({"temperature": "inf"}, "metadata temperature is 'inf'"),
    ({"unsure_threshold": "5"}, "metadata unsure_threshold is '5', expected in [0, 1]"),
    ({"unsure_threshold": "nan"}, "metadata unsure_threshold is 'nan', expected in [0, 1]"),
    # positive, but logits / T overflow to inf and every probability would be NaN
    ({"temperature": "1e-320"}, "metadata temperature is '1e-320', expected a finite number over 0.001"),
    # grey levels would leave 0-255 (or go negative): the model would read every photo wrongly
    ({"input": '{"grey_weights": [0.5, 0.6, 0.0]}'}, "metadata input grey_weights [0.5, 0.6, 0.0] must be"),
    ({"input": '{"grey_weights": [-1, 2, 0]}'}, "metadata input grey_weights [-1, 2, 0] must be"),
    ({"input": '{"grey_weights": "green"}'}, "metadata input grey_weights 'green' must be 3 numbers"),
    ({"input": '{"dim_background": 1.5}'}, "metadata input dim_background 1.5 must be a number in [0, 1]"),
    ({"input": '{"dim_background": "half"}'}, "metadata input dim_background 'half' must be a number"),
]


@pytest.mark.parametrize(("metadata", "says"), BAD)
def test_bad_metadata_is_a_model_error(tmp_path: Path, metadata: dict, says: str) -> None:
    model = tiny_onnx_model(tmp_path / "m.onnx", metadata=metadata)
    with pytest.raises(ModelError) as err:
        OnnxPredictor(model)
    assert says in str(err.value)
    assert str(err.value).startswith(str(model))


@pytest.mark.parametrize(("metadata", "says"), BAD[:1] + BAD[4:5] + BAD[7:9])
def test_predict_cli_says_it_in_one_line(
    tmp_path: Path, metadata: dict, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tiny_onnx_model(tmp_path / "m.onnx", metadata=metadata)
    array = tmp_path / "x.csv"
    array.write_text(
        "label," + ",".join(f"pixel{i}" for i in range(1, 785)) + "\n0," + ",".join(["0"] * 784) + "\n"
    )
    assert main([str(model), str(array)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "Traceback" not in err
    assert says in err


def test_good_optional_numbers_are_read(tmp_path: Path) -> None:
    model = tiny_onnx_model(
        tmp_path / "m.onnx", unsure_threshold=1.0, metadata={"temperature": "2.5", "input": None}
    )
    predictor = OnnxPredictor(model)
    assert predictor.metadata.temperature == 2.5
    assert predictor.unsure_threshold == 1.0
    assert predictor.metadata.input_shape == (None, 1, 28, 28), "no input entry: the standard shape"
    answer = predictor.predict(np.zeros((1, 28, 28), np.float32))[0]
    assert answer.unsure, "threshold 1: nothing is sure"
