"""The stratified validation split: disjoint, complete, per-class sized, seeded."""

import numpy as np
import pytest

from fingerspell.data.split import stratified_split


@pytest.fixture
def labels() -> np.ndarray:
    rng = np.random.default_rng(0)
    sizes = rng.integers(5, 60, size=24)  # uneven classes, like Sign-MNIST's
    out = np.repeat(np.arange(24), sizes)
    rng.shuffle(out)
    return out


@pytest.mark.parametrize("fraction", [0.1, 0.25, 0.5])
def test_partition_is_disjoint_complete_and_sorted(labels: np.ndarray, fraction: float) -> None:
    train, val = stratified_split(labels, fraction, seed=1)
    assert np.intersect1d(train, val).size == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.arange(len(labels)))
    assert np.all(np.diff(train) > 0)
    assert np.all(np.diff(val) > 0)


@pytest.mark.parametrize("fraction", [0.1, 0.25, 0.5])
def test_each_class_gets_its_share(labels: np.ndarray, fraction: float) -> None:
    _, val = stratified_split(labels, fraction, seed=1)
    per_class = np.bincount(labels, minlength=24)
    in_val = np.bincount(labels[val], minlength=24)
    for n, v in zip(per_class, in_val, strict=True):
        assert v == min(max(round(n * fraction), 1), n - 1)
        assert 0 < v < n, "every class is in both parts"


def test_same_seed_same_split(labels: np.ndarray) -> None:
    a = stratified_split(labels, 0.2, seed=42)
    b = stratified_split(labels, 0.2, seed=42)
    np.testing.assert_array_equal(a[1], b[1])


def test_other_seed_other_split(labels: np.ndarray) -> None:
    a = stratified_split(labels, 0.2, seed=42)
    b = stratified_split(labels, 0.2, seed=43)
    assert not np.array_equal(a[1], b[1])
    assert len(a[1]) == len(b[1])


def test_zero_fraction_keeps_everything_in_train(labels: np.ndarray) -> None:
    train, val = stratified_split(labels, 0.0, seed=0)
    assert val.size == 0
    assert train.size == len(labels)


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 1.5])
def test_bad_fraction(labels: np.ndarray, fraction: float) -> None:
    with pytest.raises(ValueError, match="val_fraction"):
        stratified_split(labels, fraction, seed=0)


def test_small_class_still_reaches_validation() -> None:
    # 5 rows at 10% rounds to 0: the class would be missing from validation
    labels = np.array([0] * 5 + [1] * 50)
    train, val = stratified_split(labels, 0.1, seed=0)
    assert np.bincount(labels[val], minlength=2).tolist() == [1, 5]
    assert np.bincount(labels[train], minlength=2).tolist() == [4, 45]
