"""Training-time augmentation, drawn once for both backends: a random crop from a zero-padded image (torchvision's
``RandomCrop(size, padding=p)``) and a random horizontal flip (``RandomHorizontalFlip()``).

The random draws are a function of (seed, epoch, batch) alone, so both frameworks, and a resumed run, see the same
augmented pixels. A crop and a flip together are a pure re-indexing of the padded image: output pixel (i, j) of
image b is ``padded[b, rows[b, i], cols[b, j]]``. The backends apply that gather on the device (one indexing op,
exact on uint8); ``apply`` here is the NumPy reference they are tested against.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Tags the random stream of the augmentation, so its draws are independent of the batch order's (seed, epoch).
_STREAM = 0xA5_6D


@dataclass(frozen=True)
class Augmentation:
    """What a recipe asks for; ``padding == 0`` and ``flip == False`` is no augmentation."""

    padding: int = 0  # pixels of zeros added on every side before a random crop back to the original size
    flip: bool = False  # mirror left-right with probability 1/2

    def __post_init__(self):
        if self.padding < 0:
            raise ValueError(f"augmentation padding must be 0 or more pixels, got {self.padding}")

    @property
    def active(self) -> bool:
        return self.padding > 0 or self.flip


@dataclass(frozen=True)
class Crops:
    """Where each image of a batch is read from in the padded training set."""

    rows: np.ndarray  # (B, H) int64 row indices into the padded image
    cols: np.ndarray  # (B, W) int64 column indices, reversed for a flipped image


def pad(images: np.ndarray, padding: int) -> np.ndarray:
    """(N, H, W, C) uint8 -> (N, H + 2p, W + 2p, C) with black borders; done once per run, not per batch."""
    if padding == 0:
        return images
    return np.pad(images, ((0, 0), (padding, padding), (padding, padding), (0, 0)))


def draw(augmentation: Augmentation, seed: int, epoch: int, batch: int, size: int, image_size: int) -> Crops:
    """The crops of batch ``batch`` (1-based) of ``epoch``: ``size`` images of ``image_size`` pixels."""
    rng = np.random.default_rng([seed, epoch, batch, _STREAM])
    offsets = rng.integers(0, 2 * augmentation.padding + 1, size=(size, 2))  # top, left: 2p + 1 positions each
    flips = rng.random(size) < 0.5 if augmentation.flip else np.zeros(size, dtype=bool)
    steps = np.arange(image_size)
    rows = offsets[:, :1] + steps
    cols = offsets[:, 1:] + np.where(flips[:, None], steps[::-1], steps)
    return Crops(rows.astype(np.int64), cols.astype(np.int64))


def apply(padded: np.ndarray, indices: np.ndarray, crops: Crops) -> np.ndarray:
    """The augmented batch in NumPy: the reference the backends' device gathers are tested against."""
    return padded[indices[:, None, None], crops.rows[:, :, None], crops.cols[:, None, :]]
