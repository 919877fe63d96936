"""The `metadata_props` an exported model carries: its contract, readable without fingerspell's code."""

import json
from collections.abc import Sequence

from fingerspell import __version__
from fingerspell.inference.reading import LUMA, GreyWeights

PREFIX = "fingerspell."
INPUT_SPEC = {
    "shape": [None, 1, 28, 28],
    "dtype": "float32",
    "range": [0, 255],
    "layout": "NCHW",
    "colour": "grey",
    "grey_weights": list(LUMA),  # how a colour photo becomes the grey input: red, green, blue
    "dim_background": 0.0,  # how far readers move the hand finder's background to grey
}


def build_metadata(
    letters: Sequence[str],
    mean: float,
    std: float,
    run_id: str | None,
    data_fingerprint: str | None,
    opset: int,
    temperature: float | None = None,
    unsure_threshold: float | None = None,
    class_bias: Sequence[float] | None = None,
    standardised: tuple[float, float] | None = None,
    grey_weights: GreyWeights = LUMA,
    dim_background: float = 0.0,
) -> dict[str, str]:
    """All `fingerspell.*` keys as strings (JSON where structured), as ONNX requires.

    `temperature`, `unsure_threshold` and `class_bias` (one number per letter, added to
    logits / T) come from calibration; without it they are left out and the predictor uses plain
    softmax and never says unsure. `standardised` (mean, spread) records that the graph itself
    gives each input image that grey mean and spread: a note for readers, nothing to apply.
    `grey_weights` and `dim_background` (in the input spec) are for readers to apply: how a
    colour photo becomes grey, and how far the room around a found hand is flattened.
    """
    meta = {
        PREFIX + "letters": json.dumps(list(letters)),
        PREFIX + "input": json.dumps(
            {
                **INPUT_SPEC,
                "grey_weights": [float(w) for w in grey_weights],
                "dim_background": float(dim_background),
            }
        ),
        PREFIX + "normalization": json.dumps({"mean": float(mean), "std": float(std)}),
        PREFIX + "run_id": run_id or "",
        PREFIX + "data_fingerprint": data_fingerprint or "",
        PREFIX + "opset": str(opset),
        PREFIX + "version": __version__,
    }
    if temperature is not None:
        meta[PREFIX + "temperature"] = repr(float(temperature))
    if class_bias is not None:
        if len(class_bias) != len(letters):
            raise ValueError(f"class_bias has {len(class_bias)} values for {len(letters)} letters")
        meta[PREFIX + "class_bias"] = json.dumps([float(b) for b in class_bias])
    if standardised is not None:
        meta[PREFIX + "standardised_input"] = json.dumps({"mean": standardised[0], "std": standardised[1]})
    if unsure_threshold is not None:
        meta[PREFIX + "unsure_threshold"] = repr(float(unsure_threshold))
    return meta


def read_metadata(props: Sequence[object]) -> dict[str, str]:
    """`model.metadata_props` -> plain dict (keys as written)."""
    return {p.key: p.value for p in props}  # type: ignore[attr-defined]
