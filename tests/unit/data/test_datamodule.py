"""SignMNISTDataModule: in-memory splits, batch format, seeded shuffling, augmentation in training only."""

from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from torch import nn

from fingerspell.data.augment import BatchAugment
from fingerspell.data.datamodule import SignMNISTDataModule
from fingerspell.data.errors import DataError
from fingerspell.data.labels import LETTERS
from fingerspell.data.processed import load_meta, load_split
from tests.fixtures.train import quiet_trainer

CLASSIC = {"rotation": 10.0, "scale": (0.9, 1.1), "translate": 0.1, "brightness": 0.1, "contrast": 0.2}


def make_dm(data_dir: Path, augment: bool = True, seed: int = 0, batch_size: int = 16) -> SignMNISTDataModule:
    aug = BatchAugment(**CLASSIC, hflip=0.0, p=1.0) if augment else None
    return SignMNISTDataModule(data_dir, batch_size=batch_size, eval_batch_size=50, augment=aug, seed=seed)


class Recorder(L.LightningModule):
    """A minimal model that keeps every batch it is given, per stage."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(784, 24)
        self.seen: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {"train": [], "val": [], "test": []}

    def _step(self, stage: str, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, y = batch
        self.seen[stage].append((x.detach().clone(), y.clone()))
        return nn.functional.cross_entropy(self.net(x.flatten(1)), y)

    def training_step(self, batch, batch_idx):
        return self._step("train", batch)

    def validation_step(self, batch, batch_idx):
        self._step("val", batch)

    def test_step(self, batch, batch_idx):
        self._step("test", batch)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def trainer(root: Path) -> L.Trainer:
    return quiet_trainer(default_root_dir=root, max_epochs=1, limit_train_batches=3, num_sanity_val_steps=0)


def fit_and_test(data_dir: Path, root: Path, seed: int = 0) -> Recorder:
    model, dm = Recorder(), make_dm(data_dir, seed=seed)
    t = trainer(root)
    t.fit(model, datamodule=dm)
    t.test(model, datamodule=dm, verbose=False)
    return model


def test_missing_data_fails_fast_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"run 'dvc repro preprocess' first"):
        make_dm(tmp_path / "processed")


@pytest.mark.parametrize(("batch", "eval_batch"), [(0, 10), (10, 0)])
def test_bad_batch_sizes(crafted_processed: Path, batch: int, eval_batch: int) -> None:
    with pytest.raises(ValueError, match="batch sizes must be >= 1"):
        SignMNISTDataModule(
            crafted_processed, batch_size=batch, eval_batch_size=eval_batch, augment=None, seed=0
        )


def test_exposes_letters_and_normalisation(crafted_processed: Path) -> None:
    dm, meta = make_dm(crafted_processed), load_meta(crafted_processed)
    assert dm.letters == list(LETTERS)
    assert dm.num_classes == 24
    assert dm.mean == meta["normalization"]["mean"]
    assert dm.std == meta["normalization"]["std"]
    assert 0 < dm.std < dm.mean < 1
    assert dm.fingerprint == meta["fingerprint"]


def test_loader_batches_are_uint8_images_and_int64_labels(crafted_processed: Path) -> None:
    dm = make_dm(crafted_processed)
    images, labels = next(iter(dm.train_dataloader()))
    assert images.shape == (16, 1, 28, 28)
    assert images.dtype == torch.uint8
    assert labels.shape == (16,)
    assert labels.dtype == torch.int64


@pytest.mark.parametrize("split", ["val", "test"])
def test_eval_loaders_cover_the_split_once_in_order(crafted_processed: Path, split: str) -> None:
    dm = make_dm(crafted_processed)
    loader = dm.val_dataloader() if split == "val" else dm.test_dataloader()
    batches = list(loader)
    images, labels = load_split(crafted_processed, split)
    assert [len(b[1]) for b in batches][:-1] == [50] * (len(batches) - 1)
    np.testing.assert_array_equal(torch.cat([b[0] for b in batches]).numpy(), images)
    np.testing.assert_array_equal(torch.cat([b[1] for b in batches]).numpy(), labels)


def test_train_loader_shuffles_repeatably_and_drops_the_ragged_batch(crafted_processed: Path) -> None:
    n_train = len(load_split(crafted_processed, "train")[1])  # 192
    first = [b[1] for b in make_dm(crafted_processed, seed=3, batch_size=50).train_dataloader()]
    again = [b[1] for b in make_dm(crafted_processed, seed=3, batch_size=50).train_dataloader()]
    other = [b[1] for b in make_dm(crafted_processed, seed=4, batch_size=50).train_dataloader()]
    assert len(first) == n_train // 50
    assert all(len(b) == 50 for b in first)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(first, other, strict=True))
    ordered = load_split(crafted_processed, "train")[1][:50]
    assert not np.array_equal(first[0].numpy(), ordered), "training order is shuffled"


def test_batch_transfer_without_a_trainer_only_scales(crafted_processed: Path) -> None:
    dm = make_dm(crafted_processed)
    images, labels = next(iter(dm.val_dataloader()))
    x, y = dm.on_after_batch_transfer((images, labels), 0)
    assert x.dtype == torch.float32
    torch.testing.assert_close(x, images.float() / 255)
    assert torch.equal(y, labels)


def test_training_batches_augmented_eval_batches_not(crafted_processed: Path, tmp_path: Path) -> None:
    model = fit_and_test(crafted_processed, tmp_path)
    assert len(model.seen["train"]) == 3
    for x, y in model.seen["train"]:
        assert x.dtype == torch.float32
        assert x.shape == (16, 1, 28, 28)
        assert y.dtype == torch.int64
        assert 0 <= x.min() <= x.max() <= 1
        raw = {img.tobytes() for img in load_split(crafted_processed, "train")[0]}
        as_uint8 = (x * 255).round().to(torch.uint8).numpy()
        assert sum(img.tobytes() in raw for img in as_uint8) == 0, "every training image is augmented"
    for split in ("val", "test"):
        images, labels = load_split(crafted_processed, split)
        x = torch.cat([b[0] for b in model.seen[split]])
        torch.testing.assert_close(x, torch.from_numpy(images).float() / 255)
        assert torch.equal(torch.cat([b[1] for b in model.seen[split]]), torch.from_numpy(labels))


def test_augmented_training_batches_repeat_under_a_seed(crafted_processed: Path, tmp_path: Path) -> None:
    a = fit_and_test(crafted_processed, tmp_path / "a", seed=5).seen["train"]
    b = fit_and_test(crafted_processed, tmp_path / "b", seed=5).seen["train"]
    c = fit_and_test(crafted_processed, tmp_path / "c", seed=6).seen["train"]
    assert all(torch.equal(p[0], q[0]) and torch.equal(p[1], q[1]) for p, q in zip(a, b, strict=True))
    assert not torch.equal(a[0][0], c[0][0])


def test_rng_state_round_trips(crafted_processed: Path) -> None:
    dm = make_dm(crafted_processed)
    state = dm.state_dict()
    first = torch.rand(3, generator=dm._aug_gen)
    dm.load_state_dict(state)
    assert torch.equal(torch.rand(3, generator=dm._aug_gen), first)


@pytest.mark.slow
def test_real_data_module(processed_dir: Path) -> None:
    dm = make_dm(processed_dir, augment=False)
    dm.setup()
    sizes = {split: len(dm.splits[split]) for split in ("train", "val", "test")}
    assert sizes["train"] + sizes["val"] == 27_455
    assert sizes["test"] == 7_172
    assert dm.letters == list(LETTERS)
    train = dm.splits["train"].images.numpy()
    pixels = train.astype(np.float64) / 255
    assert dm.mean == pytest.approx(pixels.mean(), rel=1e-9)
    assert dm.std == pytest.approx(pixels.std(), rel=1e-9)
    train_keys = {img.tobytes() for img in train}
    for split in ("val", "test"):
        keys = {img.tobytes() for img in dm.splits[split].images.numpy()}
        assert not keys & train_keys, f"{split} images must not appear in train"
    x, y = next(iter(dm.test_dataloader()))
    assert x.dtype == torch.uint8
    assert x.shape == (50, 1, 28, 28)
    assert 0 <= int(x.min()) < int(x.max()) <= 255
    assert y.dtype == torch.int64
    assert 0 <= int(y.min()) <= int(y.max()) <= 23
