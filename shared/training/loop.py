"""The epoch loop both backends run. A backend supplies three closures over its own tensors: ``steps`` (one
optimizer step on each of a few ``Batch``es, in order), ``read`` and ``validate``; batching, augmentation draws, the
learning-rate schedule, meters, progress, logging and the divergence guard are the same code for both.

The loop never waits for the device after a batch: it hands ``steps`` ``READ_EVERY`` batches at a time (and the
epoch's last ones), which returns their losses and correct counts as device vectors, and ``read`` fetches them in
one transfer. A backend may run the group in one call to the device (Keras does: a traced graph call costs more than
a small model's step). Each batch's values are still recorded (the per-batch percentiles), and the divergence guard
still names the batch whose loss first stopped being finite.

A resumed run starts at ``first_epoch``: the batch order of every epoch is drawn from (seed, epoch), its crops and
flips from (seed, epoch, batch) and its learning rates from (epoch, batch), so epoch k sees the same batches whether
or not the run stopped before it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any
from collections.abc import Callable, Iterator, Sequence

import numpy as np
from shared.util import progress

from shared.data import augment
from shared.formats import history as history_record
from shared.training.config import TrainConfig
from shared.data.dataset import batch_indices, steps_per_epoch
from shared.util.errors import Diverged
from shared.training.metrics import BatchMeter
from shared.training.schedule import learning_rate


@dataclass(frozen=True)
class Batch:
    """Everything one optimizer step is given, drawn here once for both backends."""

    indices: np.ndarray  # (B,) int64 rows of the training set
    lr: float  # the learning rate of this step (shared.training.schedule)
    crops: augment.Crops | None  # where to read each image in the padded training set; None: no augmentation


def epoch_batches(count: int, config: TrainConfig, epoch: int, image_size: int = 0) -> Iterator[Batch]:
    """The batches of ``epoch``: order from (seed, epoch), crops from (seed, epoch, batch), rates from the schedule.
    ``image_size`` is needed only when the config augments."""
    steps = steps_per_epoch(count, config.batch_size)
    for number, indices in enumerate(batch_indices(count, config.batch_size, config.seed, epoch), start=1):
        crops = None
        if config.augmentation.active:
            crops = augment.draw(config.augmentation, config.seed, epoch, number, len(indices), image_size)
        yield Batch(indices, learning_rate(config.lr_schedule, config.lr, config.epochs, steps, epoch, number), crops)


# batches -> (their mean losses, their correct counts) as device vectors, one optimizer step per batch, in order
Steps = Callable[[Sequence[Batch]], tuple[Any, Any]]
# what steps returned -> (losses, correct counts) as NumPy arrays, in one transfer
Read = Callable[[tuple[Any, Any]], tuple[np.ndarray, np.ndarray]]
Validate = Callable[[], tuple[float, float]]  # -> (mean loss, accuracy) on the validation split
# (global step of the first batch, counted from 1 over the whole run; their losses; their learning rates), called as
# the loop reads the device's values; TensorBoard's per-batch curves come from it (shared.training.tensorboard_log)
BatchesCallback = Callable[[int, list[float], list[float]], None]

# Batches handed to ``steps`` together, and read together. A read waits until the device has finished those batches
# (a host-device sync); reading after every batch would keep a GPU idle while the host prepares the next one.
READ_EVERY = 16


def format_epoch(record: dict, epochs: int) -> str:
    keys = history_record
    return (f"epoch {record[keys.EPOCH]:>3}/{epochs}  "
            f"train loss {record[keys.TRAIN_LOSS]:.4f} acc {100 * record[keys.TRAIN_ACC]:6.2f}%  "
            f"val loss {record[keys.VAL_LOSS]:.4f} acc {100 * record[keys.VAL_ACC]:6.2f}%  "
            f"{record[keys.SECONDS]:.1f}s")


def record_batches(meter: BatchMeter, values: tuple[np.ndarray, np.ndarray], sizes: list[int], epoch: int,
                   last_batch: int, batches_per_epoch: int) -> None:
    """Add the batches ending at ``last_batch`` to the meter; raise ``Diverged`` at the first non-finite loss."""
    losses, corrects = values
    first_batch = last_batch - len(sizes) + 1
    for offset, (loss, correct, size) in enumerate(zip(losses.tolist(), corrects.tolist(), sizes)):
        if not math.isfinite(loss):
            raise Diverged(epoch, first_batch + offset, batches_per_epoch, loss)
        meter.add(loss, int(correct), size)


def run_epochs(steps: Steps, read: Read, validate: Validate, train_count: int, config: TrainConfig,
               on_epoch_end: Callable[[dict], None] = lambda record: None, first_epoch: int = 1,
               image_size: int = 0, on_batches: BatchesCallback | None = None) -> list[dict]:
    """Epochs ``first_epoch``..``config.epochs``; returns their records. Raises ``Diverged`` at the first loss that
    is not a finite number, before the epoch is saved, so the last saved epoch is the last healthy one.
    ``image_size``: the training images' side, for the augmentation's crops. ``on_batches`` sees every batch's loss
    and learning rate, a few batches at a time."""
    history = []
    batches_per_epoch = steps_per_epoch(train_count, config.batch_size)
    for epoch in range(first_epoch, config.epochs + 1):
        started = time.perf_counter()
        meter = BatchMeter()
        batches = epoch_batches(train_count, config, epoch, image_size)
        with progress.bar(batches, total=batches_per_epoch, unit="batch", leave=False,
                          desc=f"epoch {epoch}/{config.epochs}", dynamic_ncols=True) as bar:
            group = []
            for number, batch in enumerate(bar, start=1):
                group.append(batch)
                if len(group) == READ_EVERY or number == batches_per_epoch:
                    values = read(steps(group))
                    record_batches(meter, values, [len(batch.indices) for batch in group], epoch, number,
                                   batches_per_epoch)
                    if on_batches is not None:
                        first_step = (epoch - 1) * batches_per_epoch + number - len(group) + 1
                        on_batches(first_step, values[0].tolist(), [batch.lr for batch in group])
                    group = []
                    bar.set_postfix(loss=f"{meter.loss:.4f}", acc=f"{100 * meter.accuracy:.1f}%", refresh=False)
        train_seconds = time.perf_counter() - started
        val_loss, val_acc = validate()
        if not math.isfinite(val_loss):
            raise Diverged(epoch, 0, batches_per_epoch, val_loss)
        train = {"loss": meter.loss, "acc": meter.accuracy, **meter.percentiles()}
        record = history_record.epoch_record(epoch, train, val_loss, val_acc, batch.lr, train_count / train_seconds,
                                             time.perf_counter() - started)
        progress.write(format_epoch(record, config.epochs))
        history.append(record)
        on_epoch_end(record)
    return history
