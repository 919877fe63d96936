"""Temperature scaling and the unsure threshold: fitted right, carried in the ONNX metadata, obeyed."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from fingerspell.export.calibration import (
    CalibrationSettings,
    calibrate,
    choose_threshold,
    fit_class_bias,
    fit_temperature,
    nll,
    softmax,
    summarise,
)
from fingerspell.export.metadata import PREFIX, build_metadata, read_metadata
from fingerspell.export.onnx_export import export_onnx
from fingerspell.export.wrapper import OnnxWrapper
from fingerspell.inference.predictor import OnnxPredictor

LETTERS = [chr(c) for c in range(ord("A"), ord("Z")) if chr(c) not in "JZ"]


def overconfident(n: int, seed: int, accuracy: float = 0.7, scale: float = 12.0) -> tuple:
    """Logits that pick the right class `accuracy` of the time, always with a huge margin."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 24, n)
    picked = np.where(rng.random(n) < accuracy, labels, rng.integers(0, 24, n))
    logits = rng.normal(0, 1, (n, 24))
    logits[np.arange(n), picked] += scale
    return logits, labels


def test_fitted_temperature_lowers_held_out_nll_of_an_overconfident_model() -> None:
    fit_logits, fit_labels = overconfident(2000, seed=0)
    held_logits, held_labels = overconfident(2000, seed=1)
    t = fit_temperature(fit_logits, fit_labels)
    assert t > 2, "an over-confident model is softened"
    assert nll(held_logits, held_labels, t) < 0.7 * nll(held_logits, held_labels)


def test_fitted_temperature_is_the_nll_minimum() -> None:
    logits, labels = overconfident(1000, seed=2)
    t = fit_temperature(logits, labels)
    for other in (t * 0.9, t * 1.1):
        assert nll(logits, labels, t) <= nll(logits, labels, other)


def test_temperature_never_changes_the_predicted_class() -> None:
    logits, _ = overconfident(500, seed=3)
    assert np.array_equal(softmax(logits).argmax(1), softmax(logits, 7.0).argmax(1))


def test_empty_calibration_data_is_refused() -> None:
    with pytest.raises(ValueError, match="no calibration data"):
        fit_temperature(np.zeros((0, 24)), np.zeros(0, dtype=int))


def leaning(n: int, seed: int, lean: float = 2.0) -> tuple:
    """Logits of a decent model that also adds `lean` to letters 0 and 1 for every input."""
    logits, labels = overconfident(n, seed, accuracy=0.6, scale=3.0)
    logits[:, :2] += lean
    return logits, labels


def test_class_bias_is_the_nll_minimum_and_evens_out_the_predictions() -> None:
    logits, labels = leaning(4000, seed=5)
    bias = fit_class_bias(logits, labels, temperature=1.5)
    assert bias.shape == (24,)
    assert abs(bias.mean()) < 1e-9
    mean_p = softmax(logits, 1.5, bias).mean(0)
    np.testing.assert_allclose(mean_p, np.bincount(labels, minlength=24) / len(labels), atol=1e-5)
    for step in (np.eye(24)[0] * 0.05, -np.eye(24)[5] * 0.05):
        assert nll(logits, labels, 1.5, bias) < nll(logits, labels, 1.5, bias + step)
    assert bias[:2].max() < bias[2:].min(), "the letters the model leans towards are pulled down"


def test_class_bias_fitted_on_one_sample_helps_another() -> None:
    fit_logits, fit_labels = leaning(4000, seed=6)
    held_logits, held_labels = leaning(4000, seed=7)
    bias = fit_class_bias(fit_logits, fit_labels)
    before = (softmax(held_logits).argmax(1) == held_labels).mean()
    after = (softmax(held_logits, 1.0, bias).argmax(1) == held_labels).mean()
    assert after > before + 0.05
    assert nll(held_logits, held_labels, 1.0, bias) < nll(held_logits, held_labels)


def test_class_bias_needs_every_class_in_the_held_out_data() -> None:
    logits, labels = leaning(200, seed=8)
    with pytest.raises(ValueError, match=r"class\(es\) \[3\] missing"):
        fit_class_bias(logits, np.where(labels == 3, 4, labels))
    with pytest.raises(ValueError, match="no calibration data"):
        fit_class_bias(np.zeros((0, 24)), np.zeros(0, dtype=int))


def test_threshold_rule_meets_the_target_on_the_answered_images() -> None:
    rng = np.random.default_rng(0)
    confidence = rng.random(5000)
    correct = rng.random(5000) < confidence  # accuracy rises with confidence
    t = choose_threshold(confidence, correct, 0.9)
    assert correct[confidence >= t].mean() >= 0.9
    lower = round(t - 0.01, 2)
    assert correct[confidence >= lower].mean() < 0.9, "the lowest threshold meeting the target"
    assert choose_threshold(confidence, np.ones(5000, bool), 0.9) == 0.0


def test_summary_reports_coverage_and_accuracy_at_the_threshold() -> None:
    logits, labels = overconfident(1000, seed=4)
    s = summarise(logits, labels, temperature=3.0, threshold=0.5)
    after = softmax(logits, 3.0)
    answered = after.max(1) >= 0.5
    assert s["coverage_at_threshold"] == pytest.approx(answered.mean(), abs=1e-4)
    assert s["accuracy_at_threshold"] == pytest.approx((after.argmax(1) == labels)[answered].mean(), abs=1e-4)
    assert 0 < answered.mean() < 1, "the threshold splits the set"
    assert s["nll_after"] < s["nll_before"]
    assert s["ece_after"] < s["ece_before"]


class _Sharp(nn.Module):
    """A fixed linear net with big weights: confident everywhere, like a CNN off its distribution."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(784, 24)
        with torch.no_grad():
            self.fc.weight.copy_(torch.randn(24, 784, generator=torch.Generator().manual_seed(0)) * 2)
            self.fc.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))


def test_calibrate_fits_on_augmented_held_out_images_and_reports_both_sets() -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (64, 1, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 24, 64)
    wrapper = OnnxWrapper(_Sharp(), 0.5, 0.25)
    flip = lambda x, generator=None: x.flip(-1)  # noqa: E731 - a deterministic stand-in augmentation
    result = calibrate(
        wrapper, (images, labels), (images, labels), flip, CalibrationSettings(repeats=2, temperature=True)
    )
    assert result["held_out"]["images"] == 128
    assert result["test"]["images"] == 64
    assert result["temperature"] > 1
    assert result["held_out"]["nll_after"] < result["held_out"]["nll_before"]
    assert 0 <= result["unsure_threshold"] <= 0.99
    fixed = calibrate(wrapper, (images, labels), (images, labels), None, CalibrationSettings(threshold=0.42))
    assert fixed["unsure_threshold"] == 0.42
    assert "fixed" in fixed["threshold_rule"]


def test_without_temperature_only_the_threshold_is_fitted() -> None:
    """The shipped default: probabilities stay the plain softmax; the threshold rule still runs."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (64, 1, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 24, 64)
    wrapper = OnnxWrapper(_Sharp(), 0.5, 0.25)
    flip = lambda x, generator=None: x.flip(-1)  # noqa: E731
    result = calibrate(wrapper, (images, labels), (images, labels), flip, CalibrationSettings(repeats=2))
    assert result["temperature"] is None
    assert result["held_out"]["nll_after"] == result["held_out"]["nll_before"]
    assert 0 <= result["unsure_threshold"] <= 0.99


def test_temperature_and_threshold_land_in_the_onnx_metadata_and_drive_unsure(tmp_path: Path) -> None:
    wrapper = OnnxWrapper(_Sharp(), 0.5, 0.25).eval()
    meta = build_metadata(LETTERS, 0.5, 0.25, None, None, 18, temperature=40.0, unsure_threshold=0.6)
    out = export_onnx(wrapper, tmp_path / "m.onnx", meta, 18)
    import onnx

    props = read_metadata(onnx.load(str(out)).metadata_props)
    assert float(props[PREFIX + "temperature"]) == 40.0
    assert float(props[PREFIX + "unsure_threshold"]) == 0.6
    json.loads(props[PREFIX + "letters"])
    image = np.random.default_rng(0).integers(0, 256, (1, 1, 28, 28)).astype(np.float32)
    plain = OnnxPredictor(out, unsure_threshold=0.0)
    calibrated = plain.predict_proba(image)
    with torch.no_grad():
        logits = wrapper(torch.from_numpy(image))[0].numpy()
    np.testing.assert_allclose(calibrated, softmax(logits, 40.0), atol=1e-5)
    top = float(calibrated.max())
    assert top < 0.6, "a temperature of 40 softens this image below the threshold"
    assert OnnxPredictor(out).predict(image, top_k=3)[0].unsure is True
    assert OnnxPredictor(out, unsure_threshold=top / 2).predict(image, top_k=3)[0].unsure is False


def test_calibrate_with_class_bias_reports_it_and_uses_it_for_the_threshold() -> None:
    rng = np.random.default_rng(1)
    labels = np.tile(np.arange(24), 4)
    images = rng.integers(0, 256, (96, 1, 28, 28), dtype=np.uint8)
    wrapper = OnnxWrapper(_Sharp(), 0.5, 0.25)
    flip = lambda x, generator=None: x.flip(-1)  # noqa: E731
    settings = CalibrationSettings(repeats=1, temperature=True, class_bias=True)
    result = calibrate(wrapper, (images, labels), (images, labels), flip, settings)
    bias = np.array(result["class_bias"])
    assert bias.shape == (24,)
    assert np.abs(bias).max() > 0
    plain = calibrate(
        wrapper, (images, labels), (images, labels), flip, CalibrationSettings(repeats=1, temperature=True)
    )
    assert plain["class_bias"] is None
    assert result["held_out"]["nll_after"] < plain["held_out"]["nll_after"], "b lowers NLL beyond T alone"


def test_class_bias_lands_in_the_metadata_and_the_predictor_adds_it(tmp_path: Path) -> None:
    wrapper = OnnxWrapper(_Sharp(), 0.5, 0.25).eval()
    bias = np.linspace(-3, 3, 24)
    meta = build_metadata(LETTERS, 0.5, 0.25, None, None, 18, temperature=20.0, class_bias=bias.tolist())
    out = export_onnx(wrapper, tmp_path / "m.onnx", meta, 18)
    predictor = OnnxPredictor(out)
    assert predictor.metadata.class_bias == pytest.approx(tuple(bias))
    assert predictor.metadata.to_dict()["class_bias"] == pytest.approx(bias.tolist())
    images = np.random.default_rng(0).integers(0, 256, (16, 1, 28, 28)).astype(np.float32)
    with torch.no_grad():
        logits = wrapper(torch.from_numpy(images))[0].numpy()
    np.testing.assert_allclose(predictor.predict_proba(images), softmax(logits, 20.0, bias), atol=1e-5)
    with pytest.raises(ValueError, match="3 values for 24 letters"):
        build_metadata(LETTERS, 0.5, 0.25, None, None, 18, class_bias=[0.0, 1.0, 2.0])


@pytest.mark.parametrize("value", ["[1, 2]", "not json", '["a"]' + "", "[NaN]"])
def test_a_malformed_class_bias_in_the_metadata_is_a_model_error(tmp_path: Path, value: str) -> None:
    import onnx

    from fingerspell.inference.predictor import ModelError

    wrapper = OnnxWrapper(_Sharp(), 0.5, 0.25).eval()
    out = export_onnx(wrapper, tmp_path / "m.onnx", build_metadata(LETTERS, 0.5, 0.25, None, None, 18), 18)
    model = onnx.load(str(out))
    entry = model.metadata_props.add()
    entry.key, entry.value = PREFIX + "class_bias", value
    onnx.save(model, str(out))
    with pytest.raises(ModelError, match="class_bias"):
        OnnxPredictor(out)


def test_uncalibrated_metadata_has_no_temperature() -> None:
    meta = build_metadata(LETTERS, 0.5, 0.25, None, None, 18)
    assert PREFIX + "temperature" not in meta
    assert PREFIX + "unsure_threshold" not in meta
    assert PREFIX + "class_bias" not in meta
