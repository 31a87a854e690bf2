"""Several processes, one model: DistributedDataParallel over the processes torchrun starts, gloo on CPUs and NCCL
on GPUs (``shared.training.distributed`` says which process this is and which rows of a batch it takes)."""

from __future__ import annotations

import inspect
import os
import sys
import threading
from typing import Any
from collections.abc import Callable

import torch
import torch.distributed as dist
from torch import nn

from shared.training.distributed import (DEFAULT_PEER_TIMEOUT, NOTE_AFTER_SECONDS, World, address_answers,
                                         from_environment)
from shared.util.errors import UsageError

def start(use_cuda: bool, replicas: int = 1, peer_timeout: float = DEFAULT_PEER_TIMEOUT) -> World:
    """Join the processes torchrun started (a no-op for a single process), waiting for them at most
    ``peer_timeout`` seconds; returns this process's place. PyTorch runs one replica per process, so ``--replicas``
    (tf.distribute's devices in one process) is refused with the torchrun command that does it."""
    if replicas > 1:
        raise UsageError(f"--replicas {replicas}: PyTorch trains several devices as several processes; launch "
                         f"torchrun --nproc_per_node {replicas} -m cnnlab_torch.train ... without --replicas")
    world = from_environment()
    if world.distributed and not dist.is_initialized():
        if not {"MASTER_ADDR", "MASTER_PORT"} <= os.environ.keys():
            raise UsageError(f"WORLD_SIZE={world.size} without MASTER_ADDR and MASTER_PORT, where the processes "
                             f"meet; start them with torchrun --nproc_per_node N, which sets all four")
        if use_cuda:
            torch.cuda.set_device(world.local_rank)
        _joined_within(lambda: dist.init_process_group("nccl" if use_cuda else "gloo"), peer_timeout, world)
    return world


def _joined_within(join: Callable[[], None], seconds: float, world: World) -> None:
    """``join()`` (init_process_group) in a thread of its own while this one waits, at most ``seconds``: the store's
    wait for the other processes is a C++ call that the interpreter cannot interrupt, so Ctrl-C and SIGTERM would
    wait for it (30 minutes by default). The main thread's wait is interruptible; on a stop or the timeout the
    process leaves, and the joining thread, a daemon, with it. The group's own timeout stays the default: it also
    bounds every collective, which may wait minutes for rank 0's export between a study's models."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            join()
        except BaseException as error:  # handed to the main thread, which raises it
            failure.append(error)

    joining = threading.Thread(target=run, name="cnnlab-init-process-group", daemon=True)
    joining.start()
    joining.join(min(seconds, NOTE_AFTER_SECONDS))  # a lock wait: signals interrupt it
    if joining.is_alive() and seconds > NOTE_AFTER_SECONDS:
        print(f"waiting up to {seconds:g} s for the other processes at {_store()} (MASTER_ADDR:MASTER_PORT)",
              file=sys.stderr, flush=True)
        joining.join(seconds - NOTE_AFTER_SECONDS)
    if joining.is_alive():
        raise UsageError(f"{_missing_peers(world)} within {seconds:g} s; start all {world.size} processes (torchrun "
                         f"--nnodes: on every machine), check MASTER_ADDR and MASTER_PORT, or wait longer with "
                         f"--peer-timeout SECONDS")
    if failure:
        raise failure[0]


def _missing_peers(world: World) -> str:
    """Who this process waited for: rank 0's store when nothing answers at its address, else the other
    processes."""
    me = f"process {world.rank} of {world.size}"
    if world.rank != 0 and not address_answers(_store()):
        return f"{me}: no answer from rank 0's store at {_store()} (MASTER_ADDR:MASTER_PORT)"
    return f"{me}: not every process joined the store at {_store()}"


def _store() -> str:
    return f"{os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']}"


def current_world() -> World:
    """This process's place: torch.distributed's own process group, which ``start`` joined; one process when it
    has none (before ``start``, alone, or after ``finish``)."""
    if not dist.is_initialized():
        return World()
    return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def broadcast(value: Any) -> Any:
    """Rank 0's ``value`` in every process (a run directory's name, which has the time in it)."""
    if not dist.is_initialized():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def loss_scale(rows: int, batch: int) -> float:
    """What this process's mean loss over ``rows`` of a ``batch`` is multiplied by before backward, so that DDP's
    average over the processes is the gradient of the whole batch's mean loss: sum over the rows / batch, times the
    number of processes. The scaling must be on the loss, not the gradients: a synchronised BatchNorm carries every
    process's loss into every other's gradient, and only a scaled loss weights those paths too."""
    return rows / batch * current_world().size


def summed(tensor: torch.Tensor) -> torch.Tensor:
    """The tensor summed over the processes (no gradient)."""
    if dist.is_initialized():
        dist.all_reduce(tensor)
    return tensor


def finish(stopped: bool = False) -> None:
    """Leave the process group once every process is done: without the barrier a process that leaves while rank 0
    still writes can abort the others ("terminate called without an active exception", 2 of 9 runs here). A process
    that ``stopped`` early (Ctrl-C, SIGTERM, a file it could not write) leaves at once: the others may be blocked in
    a step's collective that it will never join (a signal reaches Python only between C++ calls), and a barrier
    would wait with them until torchrun kills them all, 30 s later. Leaving closes this process's connections, so
    the others' collective ends with an error and their own pending stop takes over (1 s in all, measured)."""
    if dist.is_initialized():
        if not stopped:
            dist.barrier()
        dist.destroy_process_group()


def parallel(model: nn.Module) -> nn.Module:
    """The model as the training step calls it: in DistributedDataParallel, which averages the processes' gradients
    during backward (``loss_scale`` makes the average the global batch's gradient). BatchNorm layers synchronise
    themselves: ``model.build_model`` made them ``model.SyncedBatchNorm2d`` because several processes train (a
    one-process model keeps torch's ``nn.BatchNorm2d``), and their running statistics stay equal in every process,
    so DDP need not broadcast buffers. They are converted there, not here: ``freeze`` and the optimizer, made
    before ``fit`` wraps the model, must hold the modules that train."""
    if not dist.is_initialized():
        return model
    # A plain BatchNorm2d would normalise with this process's rows alone and its running statistics would drift
    # apart between processes, silently: refuse a model that was not built by build_model in this world.
    unsynced = [name for name, module in model.named_modules() if type(module) is nn.BatchNorm2d]
    if unsynced:
        raise RuntimeError(f"{len(unsynced)} BatchNorm2d layers ({unsynced[0]}, ...) are not synchronised over the "
                           f"processes; build the model with cnnlab_torch.model.build_model after select_device")
    wrapped = nn.parallel.DistributedDataParallel(model, **_no_buffer_broadcast(), gradient_as_bucket_view=True)
    wrapped.precision = model.precision  # train_step reads it; DDP, unlike torch.compile, does not pass it through
    return wrapped


def _no_buffer_broadcast() -> dict:
    """DDP's keyword for not broadcasting buffers before each forward. torch 2.13 named it ``forward_sync_buffers``
    and deprecated ``broadcast_buffers``; torch 2.11 and 2.12 (Colab's is 2.11) know only the old one, which also
    leaves buffers out of DDP's first sync. That sync has nothing to do here: every process builds the same
    weights and buffers from the same seed, or loads them from the same checkpoint."""
    if "forward_sync_buffers" in inspect.signature(nn.parallel.DistributedDataParallel.__init__).parameters:
        return {"forward_sync_buffers": False}
    return {"broadcast_buffers": False}


class _SumOverProcesses(torch.autograd.Function):
    """All-reduce (sum) with a gradient: every process's output is the same sum, so the gradient of the sum of the
    processes' losses with respect to each process's input is the sum of the output gradients."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        tensor = tensor.clone()
        dist.all_reduce(tensor)
        return tensor

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


def sum_over_processes(tensor: torch.Tensor) -> torch.Tensor:
    return _SumOverProcesses.apply(tensor) if dist.is_initialized() else tensor
