"""TensorBoard event files from each backend's own writer: the tags, the steps and the values a run recorded."""

import math

import numpy as np

from shared.formats import rundir
from tests.support.tensorboard import read_scalars
from shared.commands.train import main
from tests.support.helpers import interrupting_backend

EPOCH_TAGS = {"loss/train": "train_loss", "loss/validation": "val_loss", "accuracy/train": "train_acc",
              "accuracy/validation": "val_acc", "speed/images_per_second": "images_per_second"}
BATCH_TAGS = ("batch/loss", "batch/learning_rate")
LR, BATCH, EPOCHS = 2e-3, 128, 2
STEPS = math.ceil(1438 / BATCH)  # the digits' 1438 training images in batches of 128: 12 steps per epoch


def flags(run_dir):
    return ["--epochs", str(EPOCHS), "--batch-size", str(BATCH), "--lr", str(LR), "--lr-schedule", "cosine",
            "--out", str(run_dir)]


def steps(points):
    return [step for step, _ in points]


def values(points):
    return np.array([value for _, value in points])


def test_a_run_logs_its_epochs_and_every_batch(backend, tmp_path):
    run_dir = tmp_path / "run"
    assert main(backend.framework, lambda: backend, flags(run_dir)) == 0
    history = rundir.read_json(run_dir / rundir.METRICS)["history"]
    scalars = read_scalars(run_dir / "tensorboard")
    assert sorted(scalars) == sorted([*EPOCH_TAGS, *BATCH_TAGS])
    for tag, key in EPOCH_TAGS.items():  # event files hold float32
        assert steps(scalars[tag]) == [1, 2]
        assert np.array_equal(values(scalars[tag]), np.float32([record[key] for record in history])), tag
    for tag in BATCH_TAGS:
        assert steps(scalars[tag]) == list(range(1, EPOCHS * STEPS + 1)), tag
    # Half a cosine wave from --lr to 0 over the 24 steps, worked out here, not taken from shared.training.schedule.
    expected = [LR * 0.5 * (1 + math.cos(math.pi * step / (EPOCHS * STEPS))) for step in range(EPOCHS * STEPS)]
    assert np.array_equal(values(scalars["batch/learning_rate"]), np.float32(expected))
    # The epoch's train loss is its batches' losses weighted by their sizes (the last batch holds 1438 - 11 * 128).
    sizes = np.array([BATCH] * (STEPS - 1) + [1438 - (STEPS - 1) * BATCH])
    for epoch, record in enumerate(history):
        losses = values(scalars["batch/loss"])[epoch * STEPS:(epoch + 1) * STEPS]
        assert np.isclose((losses * sizes).sum() / sizes.sum(), record["train_loss"], rtol=1e-6)


def test_a_resumed_run_continues_the_same_curves(backend, tmp_path):
    run_dir = tmp_path / "run"
    assert main(backend.framework, lambda: interrupting_backend(backend), flags(run_dir)) == 130
    assert steps(read_scalars(run_dir / "tensorboard")["loss/train"]) == [1]
    assert main(backend.framework, lambda: backend, ["--resume", str(run_dir)]) == 0
    scalars = read_scalars(run_dir / "tensorboard")
    assert steps(scalars["loss/train"]) == [1, 2]
    assert steps(scalars["batch/loss"]) == list(range(1, EPOCHS * STEPS + 1)), "each step logged once"
