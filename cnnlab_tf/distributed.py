"""Several devices, one model: the mirror of ``cnnlab_torch.distributed``. TensorFlow distributes inside one process
(``tf.distribute``), not over processes as torchrun does, so to this backend a run is always one process: the
functions below are the single-process answers, and the runner calls them the same way for both backends."""

from __future__ import annotations

from typing import Any

import keras

from shared.distributed import World


def start(use_cuda: bool) -> World:
    return World()


def current_world() -> World:
    return World()


def broadcast(value: Any) -> Any:
    return value


def finish() -> None:
    """Nothing to leave: there is one process."""


def loss_scale(rows: int, batch: int) -> float:
    return rows / batch


def parallel(model: keras.Model) -> keras.Model:
    return model
