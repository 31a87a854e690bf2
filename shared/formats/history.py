"""The epoch record, defined once: each key of a run's ``history`` (metrics.json), what it means, and its
TensorBoard tag. The loop writes records with ``epoch_record``; the reports, TensorBoard, the plots, the study
report and compare read them through these names, so a new figure in the record is one entry here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RecordKey:
    key: str  # the name in the record, e.g. "val_acc"
    meaning: str
    tensorboard: str | None = None  # its per-epoch TensorBoard tag; None: not logged


def metric(split: str, name: str, quartile: int | None = None) -> str:
    """A metric's key: ``metric("train", "loss")`` is "train_loss", ``metric("train", "acc", 25)``
    "train_acc_p25" (the training batches' 25th percentile)."""
    assert split in SPLITS and name in METRICS, (split, name)
    return f"{split}_{name}" if quartile is None else f"{split}_{name}_p{quartile}"


SPLITS = ("train", "val")
METRICS = ("loss", "acc")  # mean cross-entropy, accuracy (0-1)
QUARTILES = (25, 75)

EPOCH, LR, IMAGES_PER_SECOND, SECONDS = "epoch", "lr", "images_per_second", "seconds"
TRAIN_LOSS, TRAIN_ACC = metric("train", "loss"), metric("train", "acc")
VAL_LOSS, VAL_ACC = metric("val", "loss"), metric("val", "acc")

RECORD = (
    RecordKey(EPOCH, "the epoch's number, from 1"),
    RecordKey(TRAIN_LOSS, "mean cross-entropy of the epoch's training batches", "loss/train"),
    RecordKey(TRAIN_ACC, "accuracy over the epoch's training batches", "accuracy/train"),
    *(RecordKey(metric("train", name, quartile), f"{quartile}th percentile of the training batches' {name}")
      for name in METRICS for quartile in QUARTILES),
    RecordKey(VAL_LOSS, "mean cross-entropy on the validation split after the epoch", "loss/validation"),
    RecordKey(VAL_ACC, "accuracy on the validation split after the epoch", "accuracy/validation"),
    RecordKey(LR, "the learning rate of the epoch's last step"),
    RecordKey(IMAGES_PER_SECOND, "training images per second (training steps only, validation excluded)",
              "speed/images_per_second"),
    RecordKey(SECONDS, "the epoch's wall time, validation included"),
)
KEYS = tuple(entry.key for entry in RECORD)
EPOCH_TAGS = {entry.key: entry.tensorboard for entry in RECORD if entry.tensorboard is not None}


def epoch_record(epoch: int, train: dict[str, float], val_loss: float, val_acc: float, lr: float,
                 images_per_second: float, seconds: float) -> dict:
    """One epoch's record; ``train`` holds the training batches' "loss", "acc", "loss_p25"... (BatchMeter's)."""
    record = {EPOCH: epoch, TRAIN_LOSS: train["loss"], TRAIN_ACC: train["acc"],
              **{metric("train", name, quartile): train[f"{name}_p{quartile}"]
                 for name in METRICS for quartile in QUARTILES},
              VAL_LOSS: val_loss, VAL_ACC: val_acc, LR: lr, IMAGES_PER_SECOND: images_per_second, SECONDS: seconds}
    assert tuple(record) == KEYS
    return record
