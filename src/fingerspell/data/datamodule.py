"""LightningDataModule over `data/processed/`: whole splits as in-memory tensors."""

from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from fingerspell.data.augment import BatchAugment
from fingerspell.data.processed import load_meta, load_split


class TensorSplit(Dataset):
    """A split held as uint8 tensors, fetched a whole batch at a time.

    `__getitems__` lets the DataLoader index the batch in one tensor op instead of N
    item calls and a collate; any sampler (shuffling, distributed) still works.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[index], self.labels[index]

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.as_tensor(indices)
        return self.images[idx], self.labels[idx]


def _keep_batch(batch: Any) -> Any:
    return batch  # __getitems__ already built the batch


class SignMNISTDataModule(L.LightningDataModule):
    """Serves train/val/test from `data/processed/`; augments training batches on device.

    Batches are `(images float32 (N, 1, 28, 28) in [0, 1], class indices int64 (N,))`;
    normalisation belongs to the model, so the exported graph can take raw pixels.

    Args:
        data_dir: the preprocess stage's output folder.
        batch_size: training batch size (evaluation uses `eval_batch_size`).
        eval_batch_size: batch size for validation and test.
        augment: training-batch augmentation, or None.
        seed: seeds shuffling and augmentation, so a run is repeatable.
    """

    def __init__(
        self,
        data_dir: str | Path,
        batch_size: int,
        eval_batch_size: int,
        augment: BatchAugment | None,
        seed: int,
    ) -> None:
        super().__init__()
        if batch_size < 1 or eval_batch_size < 1:
            raise ValueError(f"data batch sizes must be >= 1, got {batch_size} and {eval_batch_size}")
        self.data_dir = Path(data_dir)
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.augment, self.seed = augment, seed
        self.meta: dict[str, Any] = load_meta(self.data_dir)  # fails fast when missing
        self.splits: dict[str, TensorSplit] = {}
        self._aug_gen = torch.Generator().manual_seed(seed)

    @property
    def letters(self) -> list[str]:
        """Class letters in class-index order."""
        return list(self.meta["letters"])

    @property
    def num_classes(self) -> int:
        return int(self.meta["num_classes"])

    @property
    def mean(self) -> float:
        """Train-split pixel mean, in [0, 1] units."""
        return float(self.meta["normalization"]["mean"])

    @property
    def std(self) -> float:
        """Train-split pixel standard deviation, in [0, 1] units."""
        return float(self.meta["normalization"]["std"])

    @property
    def fingerprint(self) -> str:
        return str(self.meta["fingerprint"])

    def setup(self, stage: str | None = None) -> None:
        """Load every split once; they are small (34,627 x 784 bytes)."""
        for split in ("train", "val", "test"):
            if split not in self.splits:
                images, labels = load_split(self.data_dir, split)
                self.splits[split] = TensorSplit(torch.from_numpy(images), torch.from_numpy(labels))

    def _loader(self, split: str, batch_size: int, shuffle: bool) -> DataLoader:
        self.setup()
        generator = torch.Generator().manual_seed(self.seed) if shuffle else None
        return DataLoader(
            self.splits[split],
            batch_size=batch_size,
            shuffle=shuffle,
            generator=generator,
            collate_fn=_keep_batch,
            drop_last=shuffle,  # no tiny last batch to upset batch norm
            num_workers=0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", self.eval_batch_size, shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self.test_dataloader()

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 -> float in [0, 1] on the device; augment only while training."""
        images, labels = batch
        x = images.float().div_(255)
        trainer = self.trainer
        if self.augment is not None and trainer is not None and trainer.training:
            x = self.augment(x, generator=self._aug_gen)
        return x, labels

    def state_dict(self) -> dict[str, Any]:
        """Save the augmentation RNG so a resumed run continues the same random stream."""
        return {"aug_rng": self._aug_gen.get_state()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if "aug_rng" in state_dict:
            self._aug_gen.set_state(state_dict["aug_rng"])
