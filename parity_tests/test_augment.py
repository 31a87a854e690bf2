"""Augmentation is drawn once (shared.data.augment) and applied on each framework's device: with the same seed both
frameworks train on bit-identical augmented pixels, equal to the NumPy reference."""

import numpy as np
import pytest
import tensorflow as tf
import torch

from cnnlab_tf.engine import gather_batch as keras_gather
from cnnlab_torch.engine import gather_batch as torch_gather
from shared.data import augment
from shared.training.config import TrainConfig
from shared.training.loop import epoch_batches

IMAGES = np.random.default_rng(0).integers(0, 256, (50, 16, 16, 3), dtype=np.uint8)
LABELS = np.arange(50, dtype=np.int64) % 5


@pytest.mark.parametrize("padding, flip", [(4, True), (2, False), (0, True)])
def test_both_frameworks_gather_the_reference_pixels(padding, flip):
    config = TrainConfig(epochs=2, batch_size=16, seed=3, augment_padding=padding, augment_flip=flip)
    padded = augment.pad(IMAGES, padding)
    on_torch = torch.from_numpy(padded), torch.from_numpy(LABELS)
    on_keras = tf.constant(padded), tf.constant(LABELS)
    changed = 0
    for epoch in (1, 2):
        for batch in epoch_batches(len(IMAGES), config, epoch, IMAGES.shape[1]):
            expected = augment.apply(padded, batch.indices, batch.crops)
            parts = (batch.indices, batch.crops.rows, batch.crops.cols)
            torch_images, torch_labels = torch_gather(*on_torch, *(torch.from_numpy(part) for part in parts))
            keras_images, keras_labels = keras_gather(*on_keras, *(tf.constant(part) for part in parts))
            assert np.array_equal(torch_images.numpy(), expected), f"torch, epoch {epoch}: not the reference pixels"
            assert np.array_equal(keras_images.numpy(), expected), f"keras, epoch {epoch}: not the reference pixels"
            assert np.array_equal(torch_labels.numpy(), LABELS[batch.indices])
            assert np.array_equal(keras_labels.numpy(), LABELS[batch.indices])
            changed += int((expected != IMAGES[batch.indices]).any(axis=(1, 2, 3)).sum())
    # A flip alone changes half the images (50 +- 5 of 100); a crop almost all: either way far more than 25.
    assert changed > 25, f"only {changed} of 100 augmented images differ from the originals"
