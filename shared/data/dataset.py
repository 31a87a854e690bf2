"""Datasets as uint8 NHWC arrays, seeded splits and the batch order both backends share.

Both backends read the same uint8 pixels and draw the same batches in the same order from ``batch_indices``, so a
difference between their runs is a difference between the frameworks, never between their data pipelines.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Iterator, Sequence

import numpy as np

from shared.util.errors import DataError, UsageError


def fingerprint(images: np.ndarray, labels: np.ndarray) -> str:
    """The sha256 of a set of images and their labels (shapes, dtype and every byte): a run records its validation
    set's, so ``evaluate`` can tell "the data changed since training" from "the model changed"."""
    digest = hashlib.sha256()
    images, labels = np.ascontiguousarray(images), np.ascontiguousarray(labels, dtype=np.int64)
    digest.update(f"{images.shape} {images.dtype} {labels.shape}".encode())
    # the ignores: an ndarray is a buffer, but numpy's stub does not declare __buffer__
    digest.update(memoryview(images).cast("B"))  # type: ignore[arg-type]
    digest.update(memoryview(labels).cast("B"))  # type: ignore[arg-type]
    return digest.hexdigest()


@dataclass(frozen=True)
class Dataset:
    name: str
    # (N, H, W, 3) uint8, 0-255; or (N, ...) float features of a frozen backbone (shared.run.feature_cache)
    images: np.ndarray
    labels: np.ndarray  # (N,) int64 class indices
    class_names: tuple[str, ...]
    skipped: tuple[str, ...] = ()  # source files that could not be read (shared.data.image_folder)
    files: tuple[str, ...] = ()  # each image's source file, relative to the data folder (posix); () if none

    def __post_init__(self):
        pixels = self.images.dtype == np.uint8 and self.images.ndim == 4 and self.images.shape[-1] == 3
        assert pixels or self.images.dtype.kind == "f", \
            f"images must be (N, H, W, 3) uint8 or float features, got {self.images.shape} {self.images.dtype}"
        assert len(self.images) == len(self.labels), "one label per image"
        assert not self.files or len(self.files) == len(self.labels), "one file name per image, or none"

    @property
    def image_size(self) -> int:
        return self.images.shape[1]

    def subset(self, indices: np.ndarray) -> Dataset:
        files = tuple(self.files[index] for index in indices) if self.files else ()
        return Dataset(self.name, self.images[indices], self.labels[indices], self.class_names, self.skipped, files)


@dataclass(frozen=True)
class Split:
    seed: int
    train: np.ndarray  # indices into the full dataset, sorted
    val: np.ndarray

    def to_json(self) -> dict:
        return {"seed": self.seed, "train": self.train.tolist(), "val": self.val.tolist()}

    @classmethod
    def from_json(cls, record: dict) -> Split:
        """The split of a run's split.json record (``shared.formats.rundir.read_split``)."""
        return cls(record["seed"], np.array(record["train"], dtype=np.int64), np.array(record["val"], dtype=np.int64))


DIGITS_IMAGE_SIZE = 32  # load_digits is 8x8; each pixel becomes a 4x4 block


def digits_file() -> Path:
    """scikit-learn's copy of the UCI handwritten digits: one row per image, 64 intensities (0-16) and the label."""
    # Found without importing scikit-learn, which takes about half a second: only its files are needed.
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the digits dataset ships with scikit-learn, which is not installed; install cnnlab's "
                        "requirements (pip install -e .) or pick another --experiment")
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "digits.csv.gz"


def load_digits_rgb() -> Dataset:
    """scikit-learn's embedded handwritten digits (1,797 images, 10 classes) as 32x32x3 uint8: what
    ``sklearn.datasets.load_digits`` returns, read from its file.

    The 8x8 images hold 0-16 intensities; they are scaled to 0-255 and enlarged by pixel repetition, which adds
    no invented detail and is exactly reproducible.
    """
    with gzip.open(digits_file(), "rt") as rows:
        table = np.loadtxt(rows, delimiter=",")
    images, labels = table[:, :-1].reshape(-1, 8, 8), table[:, -1].astype(np.int64)
    gray = np.rint(images * (255.0 / 16.0)).astype(np.uint8)
    scale = DIGITS_IMAGE_SIZE // gray.shape[1]
    enlarged = gray.repeat(scale, axis=1).repeat(scale, axis=2)
    rgb = np.repeat(enlarged[..., None], 3, axis=-1)
    return Dataset("digits", np.ascontiguousarray(rgb), labels, tuple(str(label) for label in range(10)))


def stratified_split(labels: np.ndarray, val_fraction: float, seed: int,
                     class_names: Sequence[str] | None = None) -> Split:
    """Seeded split keeping each class's share: ``round(val_fraction * n_c)`` of class ``c`` go to validation.

    A split that leaves a class with nothing to train on, or validation with nothing at all, is refused."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    name = (lambda label: class_names[label]) if class_names is not None else str
    rng = np.random.default_rng(seed)
    val = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        count = int(round(val_fraction * len(members)))
        if count == len(members):
            enough = _fewest(0.5 / (1 - val_fraction), lambda n: round(val_fraction * n) < n)
            raise UsageError(f"--val-fraction {val_fraction} puts all {len(members)} image"
                             f"{'s' * (len(members) != 1)} of class {name(label)!r} in validation, leaving none to "
                             f"train on; {_what_works(labels, name(label), enough)}")
        val.append(rng.permutation(members)[:count])
    largest = np.bincount(labels).argmax()
    members = np.flatnonzero(labels == largest)
    if not sum(len(part) for part in val) and round(val_fraction * len(labels)) >= 1 and len(members) >= 2:
        # A small folder: every class rounds its share down to none, yet the fraction asks for an image in all.
        val.append(rng.permutation(members)[:1])
    val_indices = np.sort(np.concatenate(val))
    if len(val_indices) == 0:
        total = _fewest(0.5 / val_fraction, lambda n: round(val_fraction * n) >= 1)
        enough = max(2, total - (len(labels) - len(members)))
        raise UsageError(f"--val-fraction {val_fraction} leaves the validation set empty: the largest class "
                         f"{name(largest)!r} has {len(members)} of the {len(labels)} images; "
                         f"{_what_works(labels, name(largest), enough)}")
    train_indices = np.setdiff1d(np.arange(len(labels)), val_indices)
    return Split(seed, train_indices, val_indices)


def _what_works(labels: np.ndarray, name: str, enough: int) -> str:
    """Class c keeps a training image while round(f * n_c) < n_c, i.e. f < (n_c - 0.5) / n_c; validation gets an
    image once f * N > 0.5 (N images in all) and a class has two."""
    sizes = np.bincount(labels)
    sizes = sizes[sizes > 0]
    low, high = (0.5 / len(labels) if sizes.max() >= 2 else 0.5), (sizes.min() - 0.5) / sizes.min()
    more = f"give {name!r} at least {enough} images"
    if low >= high:
        return f"with 1 image per class no --val-fraction works: {more}"
    # Rounded inwards, so the quoted bounds are themselves safe.
    low, high = math.ceil(low * 1000) / 1000, math.floor(high * 1000) / 1000
    return f"use a --val-fraction above {low} and below {high}, or {more}"


def _fewest(estimate: float, works) -> int:
    """The smallest image count n with works(n), searched up from an estimate that float error may put one low."""
    count = max(1, math.floor(estimate))
    while not works(count):
        count += 1
    return count


def batch_indices(count: int, batch_size: int, seed: int | None = None, epoch: int = 0) -> Iterator[np.ndarray]:
    """Index batches over ``count`` items: shuffled by (seed, epoch) when ``seed`` is given, in order otherwise.

    The last batch may be smaller; nothing is dropped, so every image is seen once per epoch.
    """
    order = np.arange(count) if seed is None else np.random.default_rng([seed, epoch]).permutation(count)
    for start in range(0, count, batch_size):
        yield order[start:start + batch_size]


def steps_per_epoch(count: int, batch_size: int) -> int:
    return -(-count // batch_size)
