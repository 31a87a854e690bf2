"""Several devices, one model: ``tf.distribute.MirroredStrategy`` over N local devices (``--replicas N``): N GPUs, or
on a machine without GPUs the CPU split into N logical devices, which is how the tests run it. The mirror of
``cnnlab_torch.distributed``, where torchrun's processes are the replicas; here they live in one process.

Every replica draws the same global batch from ``shared.loop`` and takes its own contiguous rows of it (the rows
``shared.distributed.World.share`` gives), so the replicas together compute the step one device computes on the
whole batch. Variables are mirrored: built inside ``scope()``, every replica holds a copy, and the optimizer applies
the gradients summed over the replicas to each copy."""

from __future__ import annotations

import contextlib
import os
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from shared.distributed import World
from shared.errors import UsageError

_strategy: tf.distribute.Strategy | None = None  # None: one device, TensorFlow's default strategy


def start(use_cuda: bool, replicas: int = 1) -> World:
    """Spread the model over ``replicas`` devices: the first GPUs when the run uses CUDA, else CPU logical devices.
    Called before TensorFlow runs its first op, which fixes the logical devices. Returns this process's place."""
    global _strategy
    _strategy = None
    if os.environ.get("TF_CONFIG"):
        raise UsageError("TF_CONFIG is set, but cnnlab_tf trains on one machine only (--replicas N): several "
                         "machines (MultiWorkerMirroredStrategy) are not wired into the command line yet, see the "
                         "README's 'More than one GPU or machine'. Unset TF_CONFIG, or train with PyTorch under "
                         "torchrun --nnodes")
    if replicas > 1:
        if use_cuda:
            gpus = len(tf.config.list_physical_devices("GPU"))
            if replicas > gpus:
                raise UsageError(f"--replicas {replicas}: TensorFlow sees {gpus} GPU(s) here; use at most {gpus}")
            devices = [f"/gpu:{index}" for index in range(replicas)]
        else:
            devices = [device.name for device in _split_cpu(replicas)[:replicas]]
        _strategy = tf.distribute.MirroredStrategy(devices)
    return current_world()


def _split_cpu(replicas: int) -> list:
    """The CPU as at least ``replicas`` logical devices. TensorFlow fixes its logical devices when it first runs an
    op; after that the split cannot change, and a process that already ran TensorFlow on one CPU device must start
    again (a notebook: restart the kernel and train with --replicas first)."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * replicas)
    except RuntimeError:  # already initialised: keep the split there is, if it has enough devices
        pass
    devices = tf.config.list_logical_devices("CPU")
    if len(devices) < replicas:
        raise UsageError(f"--replicas {replicas}: TensorFlow already runs on {len(devices)} CPU device(s) in this "
                         f"process and cannot split the CPU any more; start a new Python process (in a notebook, "
                         f"restart the kernel) and train with --replicas {replicas} before anything else")
    return devices


def strategy() -> tf.distribute.Strategy:
    """The strategy the run trains under (TensorFlow's default strategy for one device)."""
    return _strategy or tf.distribute.get_strategy()


def scope() -> contextlib.AbstractContextManager:
    """Where models, optimizers and loss scalers are built: their variables are then mirrored on every replica."""
    return contextlib.nullcontext() if _strategy is None else _strategy.scope()


def on_every_replica(array: np.ndarray):
    """``array`` as a tensor on every replica's device, so that no step copies it between devices (the training
    set, which each replica's steps gather their rows from)."""
    if _strategy is None:
        return tf.constant(array)
    devices = _strategy.extended.worker_devices

    def on_device(context: tf.distribute.experimental.ValueContext) -> tf.Tensor:
        # the replica's global number modulo this machine's devices: its own device, with several workers too
        with tf.device(devices[context.replica_id_in_sync_group % len(devices)]):
            return tf.identity(tf.constant(array))

    return _strategy.experimental_distribute_values_from_function(on_device)


def replica_rows(count: tf.Tensor) -> slice:
    """Inside a replica's function: its contiguous rows of ``count``, the rows ``World.share`` gives a process."""
    context = tf.distribute.get_replica_context()
    replica, replicas = tf.cast(context.replica_id_in_sync_group, tf.int32), context.num_replicas_in_sync
    return slice(count * replica // replicas, count * (replica + 1) // replicas)


def current_world() -> World:
    """One process; its replicas are devices, not processes."""
    return World(devices=1 if _strategy is None else _strategy.num_replicas_in_sync)


def broadcast(value: Any) -> Any:
    return value


def finish() -> None:
    """Nothing to leave: the replicas live in this process."""


def loss_scale(rows: tf.Tensor | int, batch: tf.Tensor | int) -> tf.Tensor | float:
    """What a replica's mean loss over ``rows`` of a ``batch`` is multiplied by before the gradient: Keras's
    optimizer sums the replicas' gradients (where torch's DDP averages them), so each replica's loss is its rows'
    share of the whole batch's mean."""
    return rows / batch


def parallel(model: keras.Model) -> keras.Model:
    """The model itself: mirrored variables make it every replica's model already."""
    return model
