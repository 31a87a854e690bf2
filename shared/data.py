"""Datasets as uint8 NHWC arrays, seeded splits and the batch order both backends share.

Both backends read the same uint8 pixels and draw the same batches in the same order from ``batch_indices``, so a
difference between their runs is a difference between the frameworks, never between their data pipelines.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np


@dataclass(frozen=True)
class Dataset:
    name: str
    images: np.ndarray  # (N, H, W, 3) uint8, 0-255
    labels: np.ndarray  # (N,) int64 class indices
    class_names: tuple[str, ...]
    skipped: tuple[str, ...] = ()  # source files that could not be read (shared.image_folder)

    def __post_init__(self):
        assert self.images.dtype == np.uint8 and self.images.ndim == 4 and self.images.shape[-1] == 3, \
            f"images must be (N, H, W, 3) uint8, got {self.images.shape} {self.images.dtype}"
        assert len(self.images) == len(self.labels), "one label per image"

    @property
    def image_size(self) -> int:
        return self.images.shape[1]

    def subset(self, indices: np.ndarray) -> "Dataset":
        return Dataset(self.name, self.images[indices], self.labels[indices], self.class_names, self.skipped)


@dataclass(frozen=True)
class Split:
    seed: int
    train: np.ndarray  # indices into the full dataset, sorted
    val: np.ndarray

    def to_json(self) -> dict:
        return {"seed": self.seed, "train": self.train.tolist(), "val": self.val.tolist()}


DIGITS_IMAGE_SIZE = 32  # load_digits is 8x8; each pixel becomes a 4x4 block


def load_digits_rgb() -> Dataset:
    """scikit-learn's embedded handwritten digits (1,797 images, 10 classes) as 32x32x3 uint8.

    The 8x8 images hold 0-16 intensities; they are scaled to 0-255 and enlarged by pixel repetition, which adds
    no invented detail and is exactly reproducible.
    """
    from sklearn.datasets import load_digits  # imported here: only this dataset needs scikit-learn

    digits = load_digits()
    gray = np.rint(digits.images * (255.0 / 16.0)).astype(np.uint8)
    scale = DIGITS_IMAGE_SIZE // gray.shape[1]
    enlarged = gray.repeat(scale, axis=1).repeat(scale, axis=2)
    rgb = np.repeat(enlarged[..., None], 3, axis=-1)
    return Dataset("digits", np.ascontiguousarray(rgb), digits.target.astype(np.int64),
                   tuple(str(name) for name in digits.target_names))


DATASETS = {"digits": load_digits_rgb}


def stratified_split(labels: np.ndarray, val_fraction: float, seed: int) -> Split:
    """Seeded split keeping each class's share: ``round(val_fraction * n_c)`` of class ``c`` go to validation."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    rng = np.random.default_rng(seed)
    val = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        count = int(round(val_fraction * len(members)))
        val.append(rng.permutation(members)[:count])
    val_indices = np.sort(np.concatenate(val))
    train_indices = np.setdiff1d(np.arange(len(labels)), val_indices)
    return Split(seed, train_indices, val_indices)


def write_split(path: Path, split: Split) -> None:
    Path(path).write_text(json.dumps(split.to_json()))


def read_split(path: Path) -> Split:
    data = json.loads(Path(path).read_text())
    return Split(data["seed"], np.array(data["train"], dtype=np.int64), np.array(data["val"], dtype=np.int64))


def batch_indices(count: int, batch_size: int, seed: int | None = None, epoch: int = 0) -> Iterator[np.ndarray]:
    """Index batches over ``count`` items: shuffled by (seed, epoch) when ``seed`` is given, in order otherwise.

    The last batch may be smaller; nothing is dropped, so every image is seen once per epoch.
    """
    order = np.arange(count) if seed is None else np.random.default_rng([seed, epoch]).permutation(count)
    for start in range(0, count, batch_size):
        yield order[start:start + batch_size]


def steps_per_epoch(count: int, batch_size: int) -> int:
    return -(-count // batch_size)
