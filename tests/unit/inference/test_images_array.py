"""`array_to_input` (JSON arrays in the service, CSV rows in the CLI): out-of-range numbers of any size."""

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from fingerspell.inference.images import ImageError, array_to_input

OUT_OF_RANGE = "x: values must be finite grey levels in 0-255"
HEADER = "label," + ",".join(f"pixel{i}" for i in range(1, 785))


def image_with(value: object) -> list[list[object]]:
    """A 28x28 black image whose top-left pixel is `value`."""
    rows: list[list[object]] = [[0] * 28 for _ in range(28)]
    rows[0][0] = value
    return rows


@pytest.mark.parametrize(
    "values",
    [
        image_with(10**400),  # a Python int beyond any float: numpy raises OverflowError
        image_with(2**1100),
        image_with(-(2**1100)),
        [10**400] * 784,
        image_with(1e300),  # beyond float32: numpy warns on the cast
        np.full(784, 1e39),  # a float64 CSV row
        image_with(float("inf")),
        image_with(256),
    ],
    ids=["10**400", "2**1100", "-2**1100", "flat 10**400", "1e300", "float64 1e39", "inf", "256"],
)
def test_numbers_beyond_0_255_are_one_image_error_and_no_warning(values: object) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a RuntimeWarning would reach the user's stderr
        with pytest.raises(ImageError) as err:
            array_to_input(values, "x")
    assert str(err.value) == OUT_OF_RANGE


def test_a_huge_int_in_the_wrong_shape_gets_the_shape_error_as_inf_does() -> None:
    with pytest.raises(ImageError) as huge:
        array_to_input([[10**400]], "x")
    with pytest.raises(ImageError) as inf:
        array_to_input([[float("inf")]], "x")
    assert str(huge.value) == str(inf.value) == "x: array of shape (1, 1), expected 28x28 grey values"


def test_grey_levels_0_to_255_still_pass() -> None:
    arr = array_to_input(image_with(255), "x")
    assert arr.shape == (28, 28)
    assert arr.dtype == np.float32
    assert float(arr[0, 0]) == 255.0


@pytest.mark.parametrize("value", ["1e300", "1e39", "1" + "0" * 400])
def test_predict_cli_says_one_line_for_a_csv_value_beyond_float32(
    value: str, tiny_onnx: Path, tmp_path: Path
) -> None:
    sheet = tmp_path / "big.csv"
    sheet.write_text(HEADER + "\n0," + ",".join([value] + ["0"] * 783) + "\n")
    done = subprocess.run(
        [sys.executable, "-m", "fingerspell.inference.cli", str(tiny_onnx), str(sheet)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1  # some inputs failed
    assert done.stderr.splitlines() == [
        f"fingerspell-predict: {sheet}:2: values must be finite grey levels in 0-255"
    ], done.stderr
