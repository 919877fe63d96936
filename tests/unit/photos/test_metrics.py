import numpy as np
import pytest

from fingerspell.photos.metrics import (
    coverage_curve,
    expected_calibration_error,
    grouped_bootstrap,
    summarise,
    topk_hits,
)


def one_hot_probs(pred: np.ndarray, confidence: float, n: int = 4) -> np.ndarray:
    probs = np.full((len(pred), n), (1 - confidence) / (n - 1))
    probs[np.arange(len(pred)), pred] = confidence
    return probs


def test_topk_hits_counts_true_class_in_top_k():
    probs = np.array([[0.5, 0.3, 0.2], [0.1, 0.2, 0.7]])
    y = np.array([1, 1])
    assert topk_hits(probs, y, 1).tolist() == [0, 0]
    assert topk_hits(probs, y, 2).tolist() == [1, 1]


def test_grouped_bootstrap_is_wider_when_versions_are_not_independent():
    # 40 photos x 3 identical versions: resampling images would treat 120 independent draws
    rng = np.random.default_rng(1)
    per_photo = (rng.random(40) < 0.5).astype(float)
    values = np.repeat(per_photo, 3)
    grouped = grouped_bootstrap(values, np.repeat(np.arange(40), 3), n_boot=2000, seed=0)
    naive = grouped_bootstrap(values, np.arange(120), n_boot=2000, seed=0)
    assert grouped[0] <= values.mean() <= grouped[1]
    assert (grouped[1] - grouped[0]) > 1.4 * (naive[1] - naive[0])


def test_grouped_bootstrap_repeatable_under_seed():
    values = np.array([1, 0, 1, 1, 0, 1.0])
    groups = np.array(["a", "a", "b", "c", "c", "d"])
    assert grouped_bootstrap(values, groups, 500, seed=3) == grouped_bootstrap(values, groups, 500, seed=3)


def test_ece_zero_when_confidence_matches_accuracy_and_large_when_overconfident():
    y = np.array([0, 1, 2, 3] * 25)
    # 100% confident and always right: calibrated
    assert expected_calibration_error(one_hot_probs(y, 1.0), y) == pytest.approx(0.0, abs=1e-9)
    # 90% confident and always wrong: gap 0.9
    wrong = (y + 1) % 4
    assert expected_calibration_error(one_hot_probs(wrong, 0.9), y) == pytest.approx(0.9)


def test_coverage_curve_falls_as_threshold_rises_and_accuracy_of_sure_answers_rises():
    y = np.array([0] * 50 + [1] * 50)
    pred = np.array([0] * 50 + [0] * 50)  # right on the first half
    probs = np.vstack([one_hot_probs(pred[:50], 0.95), one_hot_probs(pred[50:], 0.4)])
    curve = coverage_curve(probs, y)
    coverages = [c["coverage"] for c in curve]
    assert coverages == sorted(coverages, reverse=True)
    at_half = next(c for c in curve if c["threshold"] == pytest.approx(0.5))
    assert at_half["coverage"] == pytest.approx(0.5)
    assert at_half["accuracy"] == pytest.approx(1.0)
    assert curve[0]["accuracy"] == pytest.approx(0.5)


def test_summarise_reports_threshold_and_per_letter():
    y = np.array([0, 0, 1, 1])
    probs = one_hot_probs(np.array([0, 1, 1, 1]), 0.8, n=2)
    out = summarise(probs, y, np.array(["p", "p", "q", "r"]), ("A", "B"), threshold=0.5, n_boot=100)
    assert out["top1"] == pytest.approx(0.75)
    assert out["per_letter"]["A"] == {"n": 2, "acc": 0.5}
    assert out["confusion"] == [[1, 1], [0, 2]]
    assert out["n_groups"] == 3
    assert out["at_threshold"]["coverage"] == pytest.approx(1.0)
