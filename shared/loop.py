"""The epoch loop both backends run. A backend supplies two closures over its own tensors: ``step`` (one optimizer
step on a ``Batch``) and ``validate``; batching, augmentation draws, the learning-rate schedule, meters, progress,
logging and the divergence guard are the same code for both.

The loop never waits for the device after a batch: ``step`` returns the batch's loss and correct count as device
scalars, and ``read`` fetches the pending ones in one transfer every ``READ_EVERY`` batches and at the end of the
epoch. Each batch's values are still recorded (the per-batch percentiles), and the divergence guard still names the
batch whose loss first stopped being finite.

A resumed run starts at ``first_epoch``: the batch order of every epoch is drawn from (seed, epoch), its crops and
flips from (seed, epoch, batch) and its learning rates from (epoch, batch), so epoch k sees the same batches whether
or not the run stopped before it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import numpy as np
from shared import progress

from shared import augment
from shared.config import TrainConfig
from shared.data import batch_indices, steps_per_epoch
from shared.errors import Diverged
from shared.metrics import BatchMeter
from shared.schedule import learning_rate


@dataclass(frozen=True)
class Batch:
    """Everything one optimizer step is given, drawn here once for both backends."""

    indices: np.ndarray  # (B,) int64 rows of the training set
    lr: float  # the learning rate of this step (shared.schedule)
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


Step = Callable[[Batch], tuple[Any, Any]]  # a batch -> (mean loss, correct count) as device scalars
# [(loss, correct), ...] device scalars -> (losses, correct counts) as NumPy arrays, in one transfer
Read = Callable[[Sequence[tuple[Any, Any]]], tuple[np.ndarray, np.ndarray]]
Validate = Callable[[], tuple[float, float]]  # -> (mean loss, accuracy) on the validation split
# (global step of the first batch, counted from 1 over the whole run; their losses; their learning rates), called as
# the loop reads the device's values; TensorBoard's per-batch curves come from it (shared.tensorboard_log)
BatchesCallback = Callable[[int, list[float], list[float]], None]

# Batches between two reads of the device's values. A read waits until the device has finished those batches (a
# host-device sync); reading after every batch would keep a GPU idle while the host prepares the next one.
READ_EVERY = 16


def format_epoch(record: dict, epochs: int) -> str:
    return (f"epoch {record['epoch']:>3}/{epochs}  "
            f"train loss {record['train_loss']:.4f} acc {100 * record['train_acc']:6.2f}%  "
            f"val loss {record['val_loss']:.4f} acc {100 * record['val_acc']:6.2f}%  "
            f"{record['seconds']:.1f}s")


def record_batches(meter: BatchMeter, values: tuple[np.ndarray, np.ndarray], sizes: list[int], epoch: int,
                   last_batch: int, batches_per_epoch: int) -> None:
    """Add the batches ending at ``last_batch`` to the meter; raise ``Diverged`` at the first non-finite loss."""
    losses, corrects = values
    first_batch = last_batch - len(sizes) + 1
    for offset, (loss, correct, size) in enumerate(zip(losses.tolist(), corrects.tolist(), sizes)):
        if not math.isfinite(loss):
            raise Diverged(epoch, first_batch + offset, batches_per_epoch, loss)
        meter.add(loss, int(correct), size)


def run_epochs(step: Step, read: Read, validate: Validate, train_count: int, config: TrainConfig,
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
            pending, sizes, rates = [], [], []
            for number, batch in enumerate(bar, start=1):
                pending.append(step(batch))
                sizes.append(len(batch.indices))
                rates.append(batch.lr)
                if len(pending) == READ_EVERY or number == batches_per_epoch:
                    values = read(pending)
                    record_batches(meter, values, sizes, epoch, number, batches_per_epoch)
                    if on_batches is not None:
                        first_step = (epoch - 1) * batches_per_epoch + number - len(pending) + 1
                        on_batches(first_step, values[0].tolist(), rates)
                    pending, sizes, rates = [], [], []
                    bar.set_postfix(loss=f"{meter.loss:.4f}", acc=f"{100 * meter.accuracy:.1f}%", refresh=False)
        train_seconds = time.perf_counter() - started
        val_loss, val_acc = validate()
        if not math.isfinite(val_loss):
            raise Diverged(epoch, 0, batches_per_epoch, val_loss)
        percentiles = meter.percentiles()
        record = {
            "epoch": epoch,
            "train_loss": meter.loss, "train_acc": meter.accuracy,
            "train_loss_p25": percentiles["loss_p25"], "train_loss_p75": percentiles["loss_p75"],
            "train_acc_p25": percentiles["acc_p25"], "train_acc_p75": percentiles["acc_p75"],
            "val_loss": val_loss, "val_acc": val_acc,
            "lr": batch.lr,  # the rate of the epoch's last step
            "images_per_second": train_count / train_seconds,  # training steps only, validation excluded
            "seconds": time.perf_counter() - started,
        }
        progress.write(format_epoch(record, config.epochs))
        history.append(record)
        on_epoch_end(record)
    return history
