"""The shared epoch loop steps and reads in groups (shared.training.loop.READ_EVERY) but still records every batch and
names the exact batch whose loss stopped being finite."""

import numpy as np
import pytest

from shared.training.config import TrainConfig
from shared.util.errors import Diverged
from shared.training.loop import READ_EVERY, epoch_batches, run_epochs

CONFIG = TrainConfig(epochs=1, batch_size=1)
BATCHES = 2 * READ_EVERY + 3  # two full reads and a short last one


def fake_training(bad_batch: int | None = None):
    """Steps whose loss is the batch number (nan at ``bad_batch``); the read counts the batches of each group."""
    calls, reads = [0], []

    def steps(batches):
        losses = []
        for _ in batches:
            calls[0] += 1
            losses.append(float("nan") if calls[0] == bad_batch else float(calls[0]))
        return losses, [1] * len(batches)

    def read(values):
        reads.append(len(values[0]))
        return np.array(values[0]), np.array(values[1])

    return steps, read, reads


def test_every_batch_is_recorded_from_grouped_reads():
    step, read, reads = fake_training()
    record = run_epochs(step, read, lambda: (0.5, 0.5), BATCHES, CONFIG)[0]
    assert reads == [READ_EVERY, READ_EVERY, 3]
    assert record["train_loss"] == pytest.approx(np.mean(np.arange(1, BATCHES + 1)))
    assert record["train_loss_p25"] == pytest.approx(np.percentile(np.arange(1, BATCHES + 1), 25))


@pytest.mark.parametrize("bad_batch", [1, READ_EVERY + 4, BATCHES])
def test_divergence_names_the_exact_batch(bad_batch):
    step, read, _ = fake_training(bad_batch)
    with pytest.raises(Diverged) as raised:
        run_epochs(step, read, lambda: (0.5, 0.5), BATCHES, CONFIG)
    assert (raised.value.epoch, raised.value.batch, raised.value.batches) == (1, bad_batch, BATCHES)


def test_epoch_batches_carry_the_schedule_and_the_crops():
    config = TrainConfig(epochs=2, batch_size=4, lr=1e-2, lr_schedule="cosine", augment_padding=2, augment_flip=True)
    first, second = list(epoch_batches(10, config, 1, 8)), list(epoch_batches(10, config, 2, 8))
    assert [len(batch.indices) for batch in first] == [4, 4, 2]
    assert first[0].lr == 1e-2 and second[-1].lr < first[-1].lr < first[0].lr, "cosine over all 6 steps"
    assert first[2].crops.rows.shape == (2, 8) and first[2].crops.cols.shape == (2, 8)
    again = list(epoch_batches(10, config, 2, 8))  # a resumed run draws epoch 2 afresh
    for batch, redrawn in zip(second, again):
        assert np.array_equal(batch.indices, redrawn.indices) and batch.lr == redrawn.lr
        assert np.array_equal(batch.crops.cols, redrawn.crops.cols)


def test_epoch_batches_without_augmentation_have_no_crops():
    assert all(batch.crops is None and batch.lr == 1e-3 for batch in epoch_batches(10, TrainConfig(), 1))
