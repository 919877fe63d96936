"""Metrics against hand-computed values; timing helpers' shape and argument checks (no timing asserts)."""

import numpy as np
import pytest

from fingerspell.evaluation.metrics import classification_metrics, confusion_matrix
from fingerspell.evaluation.timing import latency_ms, throughput


def test_confusion_matrix_rows_are_truth() -> None:
    cm = confusion_matrix(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 0]), 3)
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 1, 0], [1, 0, 0]])


def test_metrics_by_hand() -> None:
    labels = np.array([0, 0, 1, 1, 2, 2])
    pred = np.array([0, 1, 1, 1, 2, 0])
    m = classification_metrics(labels, pred, ["A", "B", "C"])
    assert m["test/acc"] == pytest.approx(4 / 6 * 100, abs=1e-3)
    # A: p=1/2 r=1/2 f=1/2; B: p=2/3 r=1 f=0.8; C: p=1 r=1/2 f=2/3
    assert m["test/f1_macro"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3 * 100, abs=1e-3)
    assert m["test/per_class_acc"] == {"A": 50.0, "B": 100.0, "C": 50.0}
    assert m["test/samples"] == 6


def test_metrics_skip_absent_classes_and_refuse_empty() -> None:
    m = classification_metrics(np.array([0, 0]), np.array([0, 0]), ["A", "B"])
    assert m["test/f1_macro"] == 100.0
    assert "B" not in m["test/per_class_acc"]
    with pytest.raises(ValueError, match="no samples"):
        classification_metrics(np.array([], int), np.array([], int), ["A"])


def test_latency_and_throughput_call_the_function_with_the_right_batches() -> None:
    seen: list[tuple[int, ...]] = []
    sample = np.zeros((5, 1, 28, 28), np.float32)
    lat = latency_ms(lambda x: seen.append(x.shape), sample, runs=7, warmup=2)
    assert lat["runs"] == 7
    assert lat["p99_ms"] >= lat["p50_ms"] >= 0
    assert seen == [(1, 1, 28, 28)] * 9
    seen.clear()
    thr = throughput(lambda x: seen.append(x.shape), sample, batch_size=12, runs=3, warmup=1)
    assert seen == [(12, 1, 28, 28)] * 4
    assert thr["images_per_s"] > 0
    with pytest.raises(ValueError, match="positive"):
        latency_ms(lambda x: None, sample, runs=0)
    with pytest.raises(ValueError, match="positive"):
        throughput(lambda x: None, sample, batch_size=0, runs=1)
