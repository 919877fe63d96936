"""Export calibration: the shipped default (threshold only) and the real-hands settings (T and class bias too)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from PIL import Image

from fingerspell.data.processed import load_split
from fingerspell.export.calibration import nll
from fingerspell.inference.predictor import OnnxPredictor
from tests.fixtures.scenes import room_without_hand

pytestmark = pytest.mark.slow


def export(checkpoint: Path, processed_dir: Path, out: Path, *overrides: str) -> Path:
    """The session's trained checkpoint through the real export CLI, shipped settings + `overrides`."""
    cmd = [
        sys.executable, "-m", "fingerspell.export.cli",
        f"source={checkpoint}", f"paths.processed_dir={processed_dir}",
        f"output={out / 'model.onnx'}", f"int8_output={out / 'model.int8.onnx'}",
        f"report={out / 'export.json'}", f"train_run={out / 'train_run.json'}",
        f"hydra.run.dir={out / 'hydra'}", "quantize.enabled=false", "mlflow.log=false", *overrides,
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return out


@pytest.fixture(scope="module")
def calibrated(
    trained_checkpoint: Path, processed_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """Temperature scaling and the class bias switched on (opt-in) on top of the shipped threshold."""
    return export(
        trained_checkpoint,
        processed_dir,
        tmp_path_factory.mktemp("calibrated"),
        "calibration.temperature=true",
        "calibration.class_bias=true",
        "calibration.max_accuracy_drop=100",  # the tiny unaugmented model loses ~12 points to it
    )


@pytest.fixture(scope="module")
def shipped(trained_checkpoint: Path, processed_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The export as `dvc repro` runs it: the unsure threshold, no temperature."""
    return export(trained_checkpoint, processed_dir, tmp_path_factory.mktemp("shipped"))


def textured_scene(seed: int, n: int = 8) -> np.ndarray:
    """Grey 28x28 scenes with no hand: smooth blobs, stripes and rectangles, 0-255."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:28, 0:28] / 27.0
    scenes = []
    for _ in range(n):
        img = 128 + 60 * np.sin(2 * np.pi * (rng.uniform(1, 4) * xs + rng.uniform(0, 1)))
        img += 40 * np.cos(2 * np.pi * rng.uniform(1, 4) * ys)
        x0, y0 = rng.integers(0, 20, 2)
        img[y0 : y0 + 8, x0 : x0 + 8] = rng.uniform(0, 255)
        scenes.append(np.clip(img + rng.normal(0, 10, (28, 28)), 0, 255))
    return np.stack(scenes)[:, None].astype(np.float32)


def test_a_class_bias_that_costs_the_test_split_fails_the_export_in_one_line(
    trained_checkpoint: Path, processed_dir: Path, calibrated: Path, tmp_path: Path
) -> None:
    """The tiny test model is not trained for photos: the bias fitted under the real-photo
    augmentation costs it points on the test split, so with the shipped limit nothing is written."""
    cal = json.loads((calibrated / "export.json").read_text())["calibration"]["test"]
    drop = 100 * (cal["accuracy_before"] - cal["accuracy"])
    assert drop > 1.0, "the premise: with the limit lifted, the bias costs more than 1 point"
    cmd = [
        sys.executable, "-m", "fingerspell.export.cli",
        f"source={trained_checkpoint}", f"paths.processed_dir={processed_dir}",
        f"output={tmp_path / 'model.onnx'}", f"report={tmp_path / 'export.json'}",
        f"train_run={tmp_path / 'train_run.json'}", f"hydra.run.dir={tmp_path / 'hydra'}",
        "quantize.enabled=false", "mlflow.log=false", "calibration.temperature=true", "calibration.class_bias=true",
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 1
    (line,) = [ln for ln in done.stderr.splitlines() if ln.startswith("fingerspell-export: error:")]
    assert f"the class bias costs the test split {drop:.2f} points" in line
    assert "calibration.class_bias=false" in line
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "model.onnx").exists()
    assert not (tmp_path / "export.json").exists()


def test_report_shows_the_fit_and_its_effect(calibrated: Path) -> None:
    cal = json.loads((calibrated / "export.json").read_text())["calibration"]
    assert "real-photo augmentation" in cal["fitted_on"]
    assert cal["temperature"] > 0
    held = cal["held_out"]
    assert held["nll_after"] <= held["nll_before"], "T minimises NLL on the data it is fitted on"
    if cal["unsure_threshold"] < 0.99:  # 0.99: no confidence level reaches the target (rule's fallback)
        plain = cal["held_out_plain"]["accuracy_at_threshold"]
        assert plain >= 0.9, "the rule: answered held-out images (plain + shifted) >= 90% right"
    for key in ("ece_before", "ece_after", "coverage_at_threshold"):
        assert 0 <= cal["test"][key] <= 1
    assert cal["held_out_plain"]["images"] * 2 == held["images"], "plain + 2 augmented passes"


def test_metadata_carries_temperature_bias_and_threshold(calibrated: Path, processed_dir: Path) -> None:
    report = json.loads((calibrated / "export.json").read_text())
    props = {p.key: p.value for p in onnx.load(str(calibrated / "model.onnx")).metadata_props}
    assert float(props["fingerspell.temperature"]) == report["calibration"]["temperature"]
    assert float(props["fingerspell.unsure_threshold"]) == report["calibration"]["unsure_threshold"]
    assert json.loads(props["fingerspell.class_bias"]) == report["calibration"]["class_bias"]
    assert len(report["calibration"]["class_bias"]) == 24
    assert report["parity"]["passed"] is True, "parity holds with the temperature and bias applied"
    # the report's test accuracy is the calibrated model's (b can move the argmax), as shipped
    test_images, test_labels = load_split(processed_dir, "test")
    shipped_acc = (
        OnnxPredictor(calibrated / "model.onnx").predict_proba(test_images).argmax(1) == test_labels
    ).mean()
    assert report["calibration"]["test"]["accuracy"] == pytest.approx(shipped_acc, abs=1e-4)
    # the predictor applies T and b: NLL recomputed from its probabilities matches softmax(z / T + b)
    predictor = OnnxPredictor(calibrated / "model.onnx")
    images, labels = load_split(processed_dir, "val")
    probs = predictor.predict_proba(images[:500])
    ours = float(-np.log(probs[np.arange(500), labels[:500]] + 1e-12).mean())
    logits = predictor.session.run(["logits"], {"image": images[:500].astype(np.float32)})[0]
    bias = np.array(predictor.metadata.class_bias)
    assert ours == pytest.approx(nll(logits, labels[:500], predictor.metadata.temperature, bias), abs=1e-3)


def test_a_scene_without_a_hand_is_unsure_and_test_images_are_answered(
    calibrated: Path, processed_dir: Path
) -> None:
    predictor = OnnxPredictor(calibrated / "model.onnx")
    scenes = predictor.predict(textured_scene(0), top_k=3)
    assert sum(p.unsure for p in scenes) >= 6, [round(p.probability, 2) for p in scenes]
    images, _ = load_split(processed_dir, "test")
    answered = np.mean([not p.unsure for p in predictor.predict(images[:500], top_k=1)])
    # calibrated for photos, an unaugmented fixture model is cautious even on clean crops
    assert answered > 0.2, "clean test images are answered far more often than scenes"
    assert answered > np.mean([not p.unsure for p in scenes]) + 0.1


def test_shipped_export_has_a_threshold_and_no_temperature(shipped: Path) -> None:
    cal = json.loads((shipped / "export.json").read_text())["calibration"]
    props = {p.key: p.value for p in onnx.load(str(shipped / "model.onnx")).metadata_props}
    assert cal["temperature"] is None
    assert "fingerspell.temperature" not in props
    assert "fingerspell.class_bias" not in props
    assert cal["class_bias"] is None
    assert float(props["fingerspell.unsure_threshold"]) == cal["unsure_threshold"]
    assert "real-photo augmentation" in cal["fitted_on"], "the threshold sees shifted held-out images"
    assert cal["held_out"]["ece_after"] == cal["held_out"]["ece_before"], "no temperature, same probabilities"


def test_predict_crop_auto_says_unsure_for_a_scene_without_a_hand(
    shipped: Path, processed_dir: Path, tmp_path: Path
) -> None:
    """The issue's check, through the real CLI: a drawn room with no hand comes back `unsure`."""
    scenes = []
    for seed in range(6):
        path = tmp_path / f"scene{seed}.jpg"
        room_without_hand(seed).save(path, quality=90)
        scenes.append(str(path))
    images, _labels = load_split(processed_dir, "test")
    crops = []
    for i in range(40):
        path = tmp_path / f"crop{i}.png"
        Image.fromarray(images[i, 0]).resize((112, 112)).save(path)
        crops.append(str(path))
    cmd = [sys.executable, "-m", "fingerspell.inference.cli", str(shipped / "model.onnx"), *scenes, *crops]
    done = subprocess.run([*cmd, "--crop", "auto", "--json"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["model"]["crop"] == "auto"
    assert doc["model"]["unsure_threshold"] is not None
    rows = {Path(r["input"]).name: r for r in doc["predictions"]}
    for row in rows.values():
        assert row["letter"] in doc["model"]["letters"]
        assert len(row["top_k"]) == 3
    scene_unsure = [rows[f"scene{s}.jpg"]["unsure"] for s in range(6)]
    crops_answered = [not rows[f"crop{i}.png"]["unsure"] for i in range(40)]
    assert sum(scene_unsure) >= 5, [rows[f"scene{s}.jpg"]["probability"] for s in range(6)]
    assert np.mean(crops_answered) > 0.5, "clean Sign-MNIST crops are mostly answered"


def test_a_standardised_export_reads_a_darker_copy_of_an_image_as_the_image(
    trained_checkpoint: Path, processed_dir: Path, shipped: Path, tmp_path: Path
) -> None:
    """`standardise_input=true` puts the per-image standardisation in the graph itself: every
    runtime reading the ONNX file gets it, and the report and metadata say which statistics.

    The same export sets `grey_weights` and `dim_background` (one export fewer): they go into
    the input spec, where every reader finds them, and change nothing for grey inputs."""
    overrides = ("standardise_input=true", "grey_weights=[0,1,0]", "dim_background=0.8")
    out = export(trained_checkpoint, processed_dir, tmp_path, *overrides)
    report = json.loads((out / "export.json").read_text())
    train_images, _ = load_split(processed_dir, "train")
    flat = train_images.reshape(len(train_images), -1).astype(np.float64)
    expected = {"mean": flat.mean(1).mean(), "std": flat.std(1).mean()}
    assert report["standardised_input"] == pytest.approx(expected, abs=1e-3)
    props = {p.key: p.value for p in onnx.load(str(out / "model.onnx")).metadata_props}
    assert json.loads(props["fingerspell.standardised_input"]) == pytest.approx(expected, abs=1e-3)
    assert OnnxPredictor(out / "model.onnx").metadata.to_dict()["standardised_input"] == pytest.approx(
        expected, abs=1e-3
    )  # what `/metadata` and `--json` show
    assert report["parity"]["passed"] is True
    images = load_split(processed_dir, "test")[0][:300].astype(np.float32)
    darker = images * 0.5 + 20  # a dim, flat exposure of the same crops
    standardised, plain = OnnxPredictor(out / "model.onnx"), OnnxPredictor(shipped / "model.onnx")
    np.testing.assert_allclose(
        standardised.predict_proba(darker), standardised.predict_proba(images), atol=1e-3
    )
    assert np.abs(plain.predict_proba(darker) - plain.predict_proba(images)).max() > 0.05
    shipped_report = json.loads((shipped / "export.json").read_text())
    assert shipped_report["standardised_input"] is None
    assert report["grey_weights"] == [0.0, 1.0, 0.0]
    assert json.loads(props["fingerspell.input"])["grey_weights"] == [0.0, 1.0, 0.0]
    assert standardised.metadata.grey_weights == (0.0, 1.0, 0.0)
    assert report["dim_background"] == 0.8
    assert json.loads(props["fingerspell.input"])["dim_background"] == 0.8
    assert standardised.metadata.photo_style.dim_background == 0.8
    assert shipped_report["dim_background"] == 0.0
    assert plain.metadata.dim_background == 0.0
    assert shipped_report["grey_weights"] == [0.299, 0.587, 0.114]
    assert plain.metadata.grey_weights == (0.299, 0.587, 0.114)
    assert plain.metadata.to_dict()["standardised_input"] is None
    assert "fingerspell.standardised_input" not in {
        p.key for p in onnx.load(str(shipped / "model.onnx")).metadata_props
    }
