"""One onnxruntime session wrapper for the CLI, the evaluate stage and the HTTP service.

The model carries its contract in `metadata_props` (letters, input spec, run id, data
fingerprint, optional temperature, class bias and unsure threshold); nothing here repeats those
values. The input spec's `grey_weights` and `dim_background` (`photo_style`) say how a photo is
to be read (the image readers apply them); `standardised_input` only notes what the graph itself
does to each image.
"""

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from fingerspell.inference.reading import (
    LUMA,
    GreyWeights,
    PhotoStyle,
    parse_dim_background,
    parse_grey_weights,
)

META_PREFIX = "fingerspell."
# logits / T must stay finite: below this (e.g. 1e-320) they overflow and every probability is NaN;
# fitted temperatures are 0.5-25
MIN_TEMPERATURE = 1e-3


class ModelError(ValueError):
    """The model file is missing, not ONNX, or lacks fingerspell's metadata."""


@dataclass(frozen=True)
class ModelMetadata:
    """What the ONNX file says about itself."""

    letters: tuple[str, ...]
    input_shape: tuple[int | None, ...]
    run_id: str | None
    data_fingerprint: str | None
    version: str | None
    temperature: float | None
    unsure_threshold: float | None
    class_bias: tuple[float, ...] | None = None
    grey_weights: GreyWeights = LUMA  # red, green, blue of a colour photo's grey; luma if unsaid
    dim_background: float = 0.0  # how far the hand finder's background moves to grey; 0 if unsaid
    raw: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly view (for `/metadata` and `--json`)."""
        return {
            "letters": list(self.letters),
            "input_shape": list(self.input_shape),
            "run_id": self.run_id,
            "data_fingerprint": self.data_fingerprint,
            "version": self.version,
            "temperature": self.temperature,
            "unsure_threshold": self.unsure_threshold,
            "class_bias": None if self.class_bias is None else list(self.class_bias),
            "grey_weights": list(self.grey_weights),
            "dim_background": self.dim_background,
            "standardised_input": self.standardised_input,
        }

    @property
    def photo_style(self) -> PhotoStyle:
        """How this model wants a photo read (what the image readers apply)."""
        return PhotoStyle(self.grey_weights, self.dim_background)

    @property
    def standardised_input(self) -> dict[str, float] | None:
        """The grey mean and spread the graph gives each input image, or None (a note: the graph acts on it)."""
        try:
            note = json.loads(self.raw.get(META_PREFIX + "standardised_input", "null"))
        except json.JSONDecodeError:
            return None
        return note if isinstance(note, dict) else None


@dataclass(frozen=True)
class Prediction:
    """One input's answer: best letter, its probability, the top k, and whether to trust it."""

    letter: str
    probability: float
    top_k: list[tuple[str, float]]
    unsure: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "letter": self.letter,
            "probability": self.probability,
            "unsure": self.unsure,
            "top_k": [{"letter": letter, "probability": p} for letter, p in self.top_k],
        }


def session_options(threads: int | None = None) -> ort.SessionOptions:
    """Tuned options: all graph optimisations, 2 intra-op threads on this class of machine.

    Measured here: defaults ran about half as fast at batch 256.
    """
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.intra_op_num_threads = threads or min(2, os.cpu_count() or 1)
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return opts


def _json_entry(raw: dict[str, str], key: str, name: str, default: str | None = None) -> Any:
    text = raw.get(META_PREFIX + key, default)
    if text is None:
        raise ModelError(
            f"{name}: no fingerspell metadata (class letters); export it with fingerspell-export"
        )
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ModelError(f"{name}: metadata {key} is not valid JSON; export the model again") from err


def _number(raw: dict[str, str], key: str, name: str, low: float, high: float, closed: bool) -> float | None:
    """An optional number in the metadata, checked: a wrong one would silently reorder or hide answers."""
    value = raw.get(META_PREFIX + key)
    if value in (None, "", "null"):
        return None
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    inside = low <= number <= high if closed else low < number < high
    if not inside:
        where = f"in [{low:g}, {high:g}]" if closed else f"a finite number over {low:g}"
        raise ModelError(f"{name}: metadata {key} is {value!r}, expected {where}; export the model again")
    return number


def _parse_metadata(raw: dict[str, str], n_outputs: int | None, name: str) -> ModelMetadata:
    """The model's own contract, checked: a hand-edited or foreign file gets one line, not a crash."""
    letters = _json_entry(raw, "letters", name)
    if not (isinstance(letters, list) and letters and all(isinstance(x, str) and x for x in letters)):
        raise ModelError(f"{name}: metadata letters must be a list of letter names; export the model again")
    letters = tuple(letters)
    if n_outputs is not None and len(letters) != n_outputs:
        raise ModelError(
            f"{name}: metadata names {len(letters)} letters but the model has {n_outputs} outputs"
        )
    spec = _json_entry(raw, "input", name, "{}")
    shape = spec.get("shape", [None, 1, 28, 28]) if isinstance(spec, dict) else None
    if not (isinstance(shape, list) and all(d is None or type(d) is int for d in shape)):
        raise ModelError(
            f"{name}: metadata input must be an object with a 'shape' list; export the model again"
        )

    spec = spec if isinstance(spec, dict) else {}
    try:
        grey = parse_grey_weights(spec.get("grey_weights", LUMA))
    except ValueError as err:
        raise ModelError(f"{name}: metadata input grey_weights {err}; export the model again") from err
    try:
        dim = parse_dim_background(spec.get("dim_background", 0.0))
    except ValueError as err:
        raise ModelError(f"{name}: metadata input dim_background {err}; export the model again") from err

    bias = None
    if raw.get(META_PREFIX + "class_bias"):
        try:
            bias = tuple(float(b) for b in json.loads(raw[META_PREFIX + "class_bias"]))
        except (json.JSONDecodeError, TypeError, ValueError) as err:
            raise ModelError(f"{name}: metadata class_bias is not a list of numbers") from err
        if len(bias) != len(letters) or not all(np.isfinite(bias)):
            raise ModelError(
                f"{name}: metadata class_bias needs {len(letters)} finite numbers, one per letter"
            )

    return ModelMetadata(
        letters=letters,
        input_shape=tuple(shape),
        run_id=raw.get(META_PREFIX + "run_id") or None,
        data_fingerprint=raw.get(META_PREFIX + "data_fingerprint") or None,
        version=raw.get(META_PREFIX + "version") or None,
        temperature=_number(raw, "temperature", name, MIN_TEMPERATURE, float("inf"), closed=False),
        unsure_threshold=_number(raw, "unsure_threshold", name, 0.0, 1.0, closed=True),
        class_bias=bias,
        grey_weights=grey,
        dim_background=dim,
        raw=dict(raw),
    )


class OnnxPredictor:
    """Runs a fingerspell ONNX model on batches of raw 28x28 grey images.

    Args:
        model: path to the `.onnx` file.
        threads: intra-op threads (default: up to 2).
        unsure_threshold: overrides the model's own threshold; None keeps it.
    """

    def __init__(
        self, model: str | Path, threads: int | None = None, unsure_threshold: float | None = None
    ) -> None:
        path = Path(model)
        if path.is_dir():
            raise ModelError(f"{path}: is a folder; give the .onnx file in it (e.g. {path / 'model.onnx'})")
        if not path.is_file():
            raise ModelError(f"{path}: model not found; run 'dvc repro' (or fingerspell-export) to make it")
        try:
            self.session = ort.InferenceSession(
                str(path), session_options(threads), providers=["CPUExecutionProvider"]
            )
        except Exception as err:  # onnxruntime raises its own untyped errors for bad files
            raise ModelError(f"{path}: not a loadable ONNX model ({str(err).splitlines()[0][:200]})") from err
        self.path = path
        outputs = {o.name: o for o in self.session.get_outputs()}
        if "probabilities" not in outputs:
            raise ModelError(
                f"{path}: model has no 'probabilities' output; export it with fingerspell-export"
            )
        self.input_name = self.session.get_inputs()[0].name
        n_classes = outputs["probabilities"].shape[-1]
        raw_meta = self.session.get_modelmeta().custom_metadata_map
        self.metadata = _parse_metadata(
            raw_meta, n_classes if isinstance(n_classes, int) else None, str(path)
        )
        self.has_logits = "logits" in outputs
        if unsure_threshold is not None and not 0.0 <= unsure_threshold <= 1.0:
            raise ValueError(f"unsure threshold {unsure_threshold} must be in [0, 1]")
        self.unsure_threshold = (
            unsure_threshold if unsure_threshold is not None else self.metadata.unsure_threshold
        )

    @property
    def letters(self) -> tuple[str, ...]:
        return self.metadata.letters

    def predict_proba(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Class probabilities (N, C) for raw grey images (N, 1, 28, 28) or (N, 28, 28), 0-255.

        A temperature and class bias in the metadata are applied to the logits (calibrated
        confidence): softmax(logits / T + b).
        """
        x = np.asarray(images, dtype=np.float32)
        if x.ndim == 3:
            x = x[:, None]
        if x.ndim != 4 or x.shape[1:] != (1, 28, 28):
            raise ValueError(f"images must be (N, 1, 28, 28), got {x.shape}")
        temperature, bias = self.metadata.temperature, self.metadata.class_bias
        use_logits = (bool(temperature) or bias is not None) and self.has_logits
        out_name = "logits" if use_logits else "probabilities"
        parts = []
        for start in range(0, len(x), max(1, batch_size)):
            (out,) = self.session.run(
                [out_name], {self.input_name: np.ascontiguousarray(x[start : start + batch_size])}
            )
            parts.append(out)
        result = np.concatenate(parts) if parts else np.zeros((0, len(self.letters)), np.float32)
        if use_logits:
            z = result / float(temperature or 1.0) + (0.0 if bias is None else np.asarray(bias, np.float32))
            z = z - z.max(axis=1, keepdims=True)
            e = np.exp(z)
            result = e / e.sum(axis=1, keepdims=True)
        return result.astype(np.float32, copy=False)

    def predict_proba_views(self, views: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Probabilities (N, C) of images given as (N, V, 28, 28) views each, averaged over the V views."""
        x = np.asarray(views, dtype=np.float32)
        if x.ndim != 4 or x.shape[2:] != (28, 28):
            raise ValueError(f"views must be (N, V, 28, 28), got {x.shape}")
        n, v = x.shape[:2]
        probs = self.predict_proba(x.reshape(n * v, 28, 28), batch_size * max(v, 1))
        return probs.reshape(n, v, -1).mean(axis=1)

    def predict(self, images: np.ndarray, top_k: int = 3, batch_size: int = 256) -> list[Prediction]:
        """Best letter, top-k and the unsure flag for each image."""
        probs = self.predict_proba(images, batch_size)
        return self.decode(probs, top_k)

    def predict_inputs(
        self, inputs: list[np.ndarray], top_k: int = 3, batch_size: int = 256
    ) -> list[Prediction]:
        """Predictions, in order, for a mix of single (28, 28) inputs and (V, 28, 28) test-time views.

        Singles (e.g. Sign-MNIST CSV rows, which are 28x28 crops already) keep their plain answer.
        """
        if not inputs:
            return []
        probs = np.zeros((len(inputs), len(self.letters)), np.float32)
        single = [i for i, a in enumerate(inputs) if a.ndim == 2]
        views = [i for i, a in enumerate(inputs) if a.ndim == 3]
        if single:
            probs[single] = self.predict_proba(np.stack([inputs[i] for i in single]), batch_size)
        if views:
            probs[views] = self.predict_proba_views(np.stack([inputs[i] for i in views]), batch_size)
        return self.decode(probs, top_k)

    def decode(self, probs: np.ndarray, top_k: int = 3) -> list[Prediction]:
        """Turn probability rows into `Prediction`s."""
        k = max(1, min(top_k, probs.shape[1] if probs.ndim == 2 else 1))
        order = np.argsort(-probs, axis=1)[:, :k]
        threshold = self.unsure_threshold
        results = []
        for row, idx in zip(probs, order, strict=True):
            tops = [(self.letters[i], float(row[i])) for i in idx]
            best_letter, best_p = tops[0]
            unsure = threshold is not None and best_p < threshold
            results.append(Prediction(letter=best_letter, probability=best_p, top_k=tops, unsure=unsure))
        return results
