"""Several devices, one model, with tf.distribute: the mirror of ``cnnlab_torch.distributed``.

- One machine: ``MirroredStrategy`` over N local devices (``--replicas N``): N GPUs, or on a machine without GPUs
  the CPU split into N logical devices, which is how the tests run it. One process holds every replica.
- Several machines: ``MultiWorkerMirroredStrategy``, one process per machine (a worker), its place and the cluster
  read from ``TF_CONFIG``; each worker trains on ``--replicas`` local GPUs, or one CPU device.

Every replica draws the same global batch from ``shared.training.loop`` and takes its own contiguous rows of it (the
rows ``shared.training.distributed.World.share`` gives), so the replicas together compute the step one device computes
on the whole batch. Variables are mirrored: built inside ``scope()``, every replica holds a copy, and the optimizer
applies the gradients summed over the replicas to each copy. As under torchrun, rank 0 (the chief) alone writes."""

from __future__ import annotations

import contextlib
import json
import signal
import threading
from dataclasses import replace
from typing import Any
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from shared.util.native_stderr import TENSORFLOW_CLUSTER_NOTES, filtered
from shared.training.distributed import (DEFAULT_PEER_TIMEOUT, Task, World, check_cpu_replicas, from_tf_config,
                                         tf_config_tasks, wait_for_tasks)
from shared.util.errors import UsageError

BROADCAST_BYTES = 4096  # the longest value broadcast() carries, JSON-encoded (a run directory's path)


def start(use_cuda: bool, replicas: int = 1,
          peer_timeout: float = DEFAULT_PEER_TIMEOUT) -> tuple[World, tf.distribute.Strategy | None]:
    """Spread the model over ``replicas`` local devices, and over the workers ``TF_CONFIG`` names: the first GPUs
    when the run uses CUDA, else CPU logical devices. Called before TensorFlow runs its first op, which fixes the
    devices. The other workers are waited for at most ``peer_timeout`` seconds. Returns this process's place and
    the strategy its models are built under (None: one device, TensorFlow's default strategy); the backend keeps
    both (``cnnlab_tf.backend.KerasBackend``), and a model built under the strategy carries it
    (``model.distribute_strategy``)."""
    strategy, world = None, from_tf_config()
    if world.distributed:
        strategy = _multi_worker(use_cuda, replicas, peer_timeout)
    elif replicas > 1:
        if use_cuda:
            devices = [f"/gpu:{index}" for index in range(len(_first_gpus(replicas)))]
        else:
            check_cpu_replicas(replicas)
            devices = [device.name for device in _split_cpu(replicas)[:replicas]]
        strategy = tf.distribute.MirroredStrategy(devices)
    local_devices = 1 if strategy is None else len(strategy.extended.worker_devices)
    return replace(world, devices=local_devices), strategy


def _multi_worker(use_cuda: bool, replicas: int, peer_timeout: float) -> tf.distribute.Strategy:
    """MultiWorkerMirroredStrategy over the cluster in TF_CONFIG: NCCL between GPUs, gRPC rings between CPUs. It
    trains on every GPU it sees, so only the first ``replicas`` stay visible; a CPU worker is one device.

    Building the strategy waits for every task to register with the cluster's leader, for an hour by default and
    in a call that holds the interpreter, so that neither Ctrl-C nor SIGTERM can stop it. So the other tasks are
    waited for here first, interruptibly (``wait_for_tasks``), and TensorFlow's own wait is bounded by the same
    timeout, for a task that answers but never registers."""
    if use_cuda:
        tf.config.set_visible_devices(_first_gpus(replicas), "GPU")
    elif replicas > 1:
        raise UsageError(f"--replicas {replicas} with TF_CONFIG: a worker without GPUs trains on one CPU device; "
                         f"start more workers instead")
    me, others = tf_config_tasks()
    wait_for_tasks(me, others, peer_timeout)
    _bound_registration(me, others, peer_timeout)
    implementation = tf.distribute.experimental.CommunicationImplementation
    options = tf.distribute.experimental.CommunicationOptions(
        implementation=implementation.NCCL if use_cuda else implementation.RING)
    try:
        with filtered(TENSORFLOW_CLUSTER_NOTES):
            strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    except (tf.errors.DeadlineExceededError, tf.errors.UnavailableError) as error:
        raise UsageError(f"TF_CONFIG: the cluster did not form within {peer_timeout:g} s although every task's "
                         f"address answered ({type(error).__name__}: {error.message.splitlines()[0]}); is each "
                         f"address a cnnlab_tf.train worker of this cluster? (this is {me})") from None
    _take_back_sigterm()
    return strategy


def _bound_registration(me: Task, others: list[Task], seconds: float) -> None:
    """The coordination service MultiWorkerMirroredStrategy configures for itself (a standalone service led by the
    chief, or else worker 0, coordinating every chief and worker task), with the registration timeout bounded:
    the strategy keeps a configuration it finds."""
    from tensorflow.python.eager import context  # the configuration has no public API

    kinds = [task.kind for task in (me, *others)]
    leader = "chief" if "chief" in kinds else "worker"
    context.context().configure_coordination_service(service_type="standalone",
                                                     service_leader=f"/job:{leader}/replica:0/task:0",
                                                     cluster_register_timeout_in_ms=int(seconds * 1000))
    jobs = context.context().coordination_service.coordinated_job_list  # the message type without its module
    for kind in ("chief", "worker"):
        if kind in kinds:
            jobs.add(name=kind, num_tasks=kinds.count(kind))


def _take_back_sigterm() -> None:
    """TensorFlow's preemption notifier takes SIGTERM over when the strategy starts (preemption_notifier.cc), and
    only notes it, so a worker would train on; the run's own handler (``shared.util.signals``) gets it back."""
    handler = signal.getsignal(signal.SIGTERM)
    if callable(handler) and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)


def _first_gpus(replicas: int) -> list:
    """The first ``replicas`` GPUs this process sees; a usage error when it sees fewer."""
    gpus = tf.config.list_physical_devices("GPU")
    if replicas > len(gpus):
        raise UsageError(f"--replicas {replicas}: TensorFlow sees {len(gpus)} GPU(s) here; use at most {len(gpus)}")
    return gpus[:replicas]


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


def mirrored(strategy: tf.distribute.Strategy | None) -> bool:
    """Whether ``strategy`` spreads a model over several replicas (a model's ``distribute_strategy`` is
    TensorFlow's default one when it was built on one device)."""
    return isinstance(strategy, (tf.distribute.MirroredStrategy, tf.distribute.MultiWorkerMirroredStrategy))


def scope(strategy: tf.distribute.Strategy | None) -> contextlib.AbstractContextManager:
    """Where models, optimizers and loss scalers are built: under a mirrored ``strategy`` (the backend's, or a
    model's ``distribute_strategy``) their variables are mirrored on every replica."""
    return strategy.scope() if strategy is not None and mirrored(strategy) else contextlib.nullcontext()


def _per_replica(make: Callable[[int], tf.Tensor], strategy: tf.distribute.Strategy):
    """A value per replica of this process, each made on its replica's device by ``make(local index)``."""
    devices = strategy.extended.worker_devices

    def on_device(context: tf.distribute.experimental.ValueContext) -> tf.Tensor:
        # the replica's global number modulo this process's devices: its own device, with several workers too
        local = context.replica_id_in_sync_group % len(devices)
        with tf.device(devices[local]):
            return make(local)

    return strategy.experimental_distribute_values_from_function(on_device)


def on_every_replica(array: np.ndarray, strategy: tf.distribute.Strategy):
    """``array`` as a tensor on every replica's device of ``strategy`` (a model's), so that no step copies it
    between devices (the training set, which each replica's steps gather their rows from)."""
    if not mirrored(strategy):
        return tf.constant(array)
    return _per_replica(lambda local: tf.identity(tf.constant(array)), strategy)


def replica_rows(count: tf.Tensor) -> slice:
    """Inside a replica's function: its contiguous rows of ``count``, the rows ``World.share`` gives a process."""
    context = tf.distribute.get_replica_context()
    replica, replicas = tf.cast(context.replica_id_in_sync_group, tf.int32), context.num_replicas_in_sync
    return slice(count * replica // replicas, count * (replica + 1) // replicas)


def broadcast_over(strategy: tf.distribute.Strategy | None, world: World, value: Any) -> Any:
    """Rank 0's ``value`` in every worker (a run directory's name, which has the time in it): its JSON bytes summed
    over the replicas, to which only rank 0's first replica contributes them."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return value
    encoded = np.zeros(BROADCAST_BYTES, np.int32)
    if world.is_main:
        data = np.frombuffer(json.dumps(value).encode(), np.uint8)
        if len(data) > BROADCAST_BYTES:
            raise UsageError(f"{str(value)[:80]}...: longer than the {BROADCAST_BYTES} bytes the workers exchange")
        encoded[:len(data)] = data
    contributed = _per_replica(lambda local: tf.constant(encoded if world.is_main and local == 0 else
                                                         np.zeros_like(encoded)), strategy)
    summed = strategy.reduce("SUM", contributed, axis=None).numpy()
    return json.loads(bytes(summed.astype(np.uint8)).rstrip(b"\0"))


def wait_for_workers(strategy: tf.distribute.Strategy | None, world: World, stopped: bool = False) -> None:
    """Every worker waits for the others, so that none leaves while a collective still needs it; then the backend
    drops the strategy, and what rank 0 does afterwards (a study's best model, loaded for the API) is its own, with
    nothing waiting for a worker that has left. A worker that ``stopped`` early (a signal, a file it could not
    write) does not wait: the others may be stopping too, or blocked in a step it will never join."""
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and not stopped:
        broadcast_over(strategy, world, None)


def loss_scale(rows: tf.Tensor | int, batch: tf.Tensor | int) -> tf.Tensor | float:
    """What a replica's mean loss over ``rows`` of a ``batch`` is multiplied by before the gradient: Keras's
    optimizer sums the replicas' gradients (where torch's DDP averages them), so each replica's loss is its rows'
    share of the whole batch's mean."""
    return rows / batch
