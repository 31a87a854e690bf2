"""The epoch loop both backends run. A backend supplies two closures over its own tensors: ``step`` (one optimizer
step on a batch of indices) and ``validate``; batching, meters, progress and logging are the same code for both."""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
from tqdm import tqdm

from shared.config import TrainConfig
from shared.data import batch_indices, steps_per_epoch
from shared.metrics import BatchMeter

Step = Callable[[np.ndarray], tuple[float, int]]  # batch indices -> (mean loss, correct predictions)
Validate = Callable[[], tuple[float, float]]  # -> (mean loss, accuracy) on the validation split


def format_epoch(record: dict, epochs: int) -> str:
    return (f"epoch {record['epoch']:>3}/{epochs}  "
            f"train loss {record['train_loss']:.4f} acc {100 * record['train_acc']:6.2f}%  "
            f"val loss {record['val_loss']:.4f} acc {100 * record['val_acc']:6.2f}%  "
            f"{record['seconds']:.1f}s")


def run_epochs(step: Step, validate: Validate, train_count: int, config: TrainConfig,
               on_epoch_end: Callable[[dict], None] = lambda record: None) -> list[dict]:
    history = []
    for epoch in range(1, config.epochs + 1):
        started = time.perf_counter()
        meter = BatchMeter()
        batches = batch_indices(train_count, config.batch_size, config.seed, epoch)
        with tqdm(batches, total=steps_per_epoch(train_count, config.batch_size), unit="batch", leave=False,
                  desc=f"epoch {epoch}/{config.epochs}", dynamic_ncols=True) as bar:
            for indices in bar:
                loss, correct = step(indices)  # the float() inside step is a device sync, once per batch
                meter.add(loss, correct, len(indices))
                bar.set_postfix(loss=f"{meter.loss:.4f}", acc=f"{100 * meter.accuracy:.1f}%", refresh=False)
        val_loss, val_acc = validate()
        percentiles = meter.percentiles()
        record = {
            "epoch": epoch,
            "train_loss": meter.loss, "train_acc": meter.accuracy,
            "train_loss_p25": percentiles["loss_p25"], "train_loss_p75": percentiles["loss_p75"],
            "train_acc_p25": percentiles["acc_p25"], "train_acc_p75": percentiles["acc_p75"],
            "val_loss": val_loss, "val_acc": val_acc,
            "seconds": time.perf_counter() - started,
        }
        tqdm.write(format_epoch(record, config.epochs))
        history.append(record)
        on_epoch_end(record)
    return history
