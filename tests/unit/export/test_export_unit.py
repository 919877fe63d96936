"""The export wrapper, metadata and ONNX writing on a tiny random net (no training, no data)."""

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from fingerspell.export.metadata import INPUT_SPEC, build_metadata
from fingerspell.export.onnx_export import export_onnx, save_model
from fingerspell.export.parity import check_parity
from fingerspell.export.quantize import calibration_sample, quantize_int8
from fingerspell.export.wrapper import OnnxWrapper, image_statistics
from fingerspell.inference.predictor import OnnxPredictor

LETTERS = list("ABCDEFGHIKLMNOPQRSTUVWXY")


def tiny_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(4), nn.Flatten(), nn.Linear(196, 24)
    )


def test_wrapper_normalises_raw_pixels_inside() -> None:
    net = tiny_net().eval()
    wrapper = OnnxWrapper(net, mean=0.4, std=0.2).eval()
    x = torch.rand(3, 1, 28, 28) * 255
    logits, probs = wrapper(x)
    torch.testing.assert_close(logits, net((x / 255 - 0.4) / 0.2), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(3))


def test_wrapper_refuses_zero_std() -> None:
    with pytest.raises(ValueError, match="std must be positive"):
        OnnxWrapper(tiny_net(), mean=0.5, std=0.0)


def test_standardised_wrapper_reads_every_exposure_of_an_image_alike() -> None:
    net = tiny_net().eval()
    wrapper = OnnxWrapper(net, 0.4, 0.2, standardise=(159.3, 40.2)).eval()
    x = torch.rand(3, 1, 28, 28) * 255
    darker = x * 0.5 + 10  # half the contrast, much darker
    torch.testing.assert_close(wrapper(darker)[0], wrapper(x)[0], rtol=1e-4, atol=1e-4)
    # the net sees the image at the train images' typical mean and spread
    seen = (x - x.mean(dim=(1, 2, 3), keepdim=True)) / x.std(dim=(1, 2, 3), keepdim=True, unbiased=False)
    torch.testing.assert_close(
        wrapper(x)[0], net(((seen * 40.2 + 159.3) / 255 - 0.4) / 0.2), rtol=1e-4, atol=1e-4
    )
    flat = torch.full((1, 1, 28, 28), 30.0)  # no spread to scale: it becomes a flat image at the mean
    torch.testing.assert_close(wrapper(flat)[0], net(torch.full_like(flat, (159.3 / 255 - 0.4) / 0.2)))
    plain = OnnxWrapper(net, 0.4, 0.2).eval()
    assert (plain(darker)[0] - plain(x)[0]).abs().max() > 0.01


def test_a_nearly_flat_image_is_not_blown_up_to_full_contrast() -> None:
    net = tiny_net().eval()
    wrapper = OnnxWrapper(net, 0.4, 0.2, standardise=(159.3, 40.2)).eval()
    rng = torch.Generator().manual_seed(0)
    noise = torch.randn(1, 1, 28, 28, generator=rng)
    noise = (noise - noise.mean()) / noise.std(unbiased=False)  # spread exactly 1 grey level
    seen = (noise * 40.2 / 8.0 + 159.3) / 255  # scaled as if it spread 8 grey levels (MIN_SPREAD)
    torch.testing.assert_close(wrapper(noise + 30)[0], net((seen - 0.4) / 0.2), rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_int8_copy_keeps_the_standardisation_in_float(tmp_path: Path) -> None:
    """Quantised, the standardisation's Add would be held to the range of the calibration images;
    the int8 graph quantises nothing before the first Conv but that Conv's own input."""
    wrapper = OnnxWrapper(tiny_net(), 0.4, 0.2, standardise=(159.3, 40.2)).eval()
    fp32 = export_onnx(wrapper, tmp_path / "m.onnx", build_metadata(LETTERS, 0.4, 0.2, None, None, 18), 18)
    rng = np.random.default_rng(0)
    images = np.clip(128 + rng.normal(0, 40, (64, 1, 28, 28)), 0, 255).astype(np.float32)
    int8 = quantize_int8(fp32, tmp_path / "m.int8.onnx", images, ["Conv", "Gemm", "Relu", "Add"])
    ops = [node.op_type for node in onnx.load(str(int8)).graph.node]
    before_conv = ops[: ops.index("Conv")]
    assert "Add" in before_conv, "the standardisation is in the graph"
    assert before_conv.count("QuantizeLinear") == 1, before_conv
    assert before_conv[-2:] == ["QuantizeLinear", "DequantizeLinear"]  # the Conv's input
    expected = OnnxPredictor(fp32).predict_proba(images[:16])
    assert (OnnxPredictor(int8).predict_proba(images[:16]).argmax(1) == expected.argmax(1)).mean() >= 0.9


def test_standardised_spread_must_be_positive() -> None:
    with pytest.raises(ValueError, match="spread must be positive"):
        OnnxWrapper(tiny_net(), 0.5, 0.2, standardise=(128.0, 0.0))


def test_image_statistics_average_each_images_own_mean_and_spread() -> None:
    images = np.stack([np.full((1, 28, 28), 100), np.tile([0, 200], (1, 28, 14))]).astype(np.uint8)
    assert image_statistics(images) == pytest.approx((100.0, 50.0))  # means 100 / 100, spreads 0 / 100


def test_metadata_values_are_strings_and_json() -> None:
    meta = build_metadata(LETTERS, 0.5, 0.2, "run123", "fp", 18)
    assert all(isinstance(v, str) for v in meta.values())
    assert json.loads(meta["fingerspell.letters"]) == LETTERS
    assert json.loads(meta["fingerspell.input"]) == INPUT_SPEC
    assert json.loads(meta["fingerspell.normalization"]) == {"mean": 0.5, "std": 0.2}
    assert meta["fingerspell.run_id"] == "run123"
    assert meta["fingerspell.opset"] == "18"
    assert "fingerspell.standardised_input" not in meta
    assert json.loads(meta["fingerspell.input"])["grey_weights"] == [0.299, 0.587, 0.114], "luma by default"
    assert json.loads(meta["fingerspell.input"])["dim_background"] == 0.0, "off by default"
    green = build_metadata(
        LETTERS, 0.5, 0.2, None, None, 18, grey_weights=(0.0, 1.0, 0.0), dim_background=0.8
    )
    expected = {**INPUT_SPEC, "grey_weights": [0.0, 1.0, 0.0], "dim_background": 0.8}
    assert json.loads(green["fingerspell.input"]) == expected
    noted = build_metadata(LETTERS, 0.5, 0.2, None, None, 18, standardised=(159.3, 40.2))
    assert json.loads(noted["fingerspell.standardised_input"]) == {"mean": 159.3, "std": 40.2}


@pytest.mark.slow
def test_export_round_trips_metadata_and_matches_torch(tmp_path: Path) -> None:
    wrapper = OnnxWrapper(tiny_net(), 0.5, 0.2).eval()
    meta = build_metadata(LETTERS, 0.5, 0.2, "run-abc", "f" * 64, 18)
    out = export_onnx(wrapper, tmp_path / "m.onnx", meta, 18)
    model = onnx.load(str(out))
    onnx.checker.check_model(model, full_check=True)
    assert {p.key: p.value for p in model.metadata_props} == meta
    assert [i.name for i in model.graph.input] == ["image"]
    assert {o.name for o in model.graph.output} == {"logits", "probabilities"}
    assert not model.graph.input[0].type.tensor_type.shape.dim[0].HasField("dim_value")  # dynamic N
    predictor = OnnxPredictor(out)
    assert predictor.metadata.run_id == "run-abc"
    assert predictor.letters == tuple(LETTERS)
    images = np.random.default_rng(0).integers(0, 256, (300, 1, 28, 28)).astype(np.uint8)
    parity = check_parity(wrapper, predictor, images, atol=1e-4, batch_size=128)
    assert parity.passed, parity
    assert parity.samples == 300
    assert list(tmp_path.iterdir()) == [out]  # no temp files left behind


def test_save_model_writes_nothing_when_the_checker_fails(tmp_path: Path) -> None:
    bad = onnx.ModelProto()  # no graph, no opset: the checker refuses it
    with pytest.raises(onnx.checker.ValidationError):
        save_model(bad, tmp_path / "bad.onnx")
    assert list(tmp_path.iterdir()) == []


def test_calibration_sample_is_seeded_and_bounded() -> None:
    images = np.arange(50 * 784, dtype=np.uint32).reshape(50, 1, 28, 28).astype(np.uint8)
    a, b = calibration_sample(images, 20, seed=1), calibration_sample(images, 20, seed=1)
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32
    assert a.shape == (20, 1, 28, 28)
    assert len(calibration_sample(images, 500, seed=1)) == 50
    with pytest.raises(ValueError, match="calibration_samples"):
        calibration_sample(images, 0, seed=1)


@pytest.mark.parametrize(("content", "found"), [("[1, 2]", "list"), ('"x"', "str"), ("3", "int")])
def test_train_run_record_that_is_not_an_object_says_so(tmp_path: Path, content: str, found: str) -> None:
    from fingerspell.export.source import read_train_run

    path = tmp_path / "train_run.json"
    path.write_text(content)
    with pytest.raises(ValueError) as err:
        read_train_run(path)
    assert str(err.value) == f"{path}: expected a JSON object, found {found}; rerun 'dvc repro train'"


def test_headline_metrics_of_a_threshold_that_answers_nothing() -> None:
    """A weak (1-epoch) model's fitted threshold can leave nothing answered: null, not a crash."""
    from fingerspell.export.stage import headline_metrics

    report = {
        "test_accuracy": 11.2,
        "parity": {"max_abs_prob_diff": 1e-6},
        "size_bytes": 1_060_000,
        "calibration": {
            "unsure_threshold": 0.99,
            "test": {"coverage_at_threshold": 0.0, "accuracy_at_threshold": None, "ece_after": 0.0312},
        },
        "int8": {"kept": False},
    }
    metrics = headline_metrics(report)
    assert metrics["test_answered"] == 0.0
    assert metrics["test_answered_acc"] is None
    assert metrics["test_ece"] == 3.12
