"""Several processes, one model: DistributedDataParallel over the processes torchrun starts, gloo on CPUs and NCCL
on GPUs (``shared.training.distributed`` says which process this is and which rows of a batch it takes)."""

from __future__ import annotations

import inspect
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from shared.training.distributed import World, from_environment
from shared.util.errors import UsageError

_world = World()


def start(use_cuda: bool, replicas: int = 1) -> World:
    """Join the processes torchrun started (a no-op for a single process); returns this process's place. PyTorch
    runs one replica per process, so ``--replicas`` (tf.distribute's devices in one process) is refused with the
    torchrun command that does it."""
    global _world
    if replicas > 1:
        raise UsageError(f"--replicas {replicas}: PyTorch trains several devices as several processes; launch "
                         f"torchrun --nproc_per_node {replicas} -m cnnlab_torch.train ... without --replicas")
    world = from_environment()
    if world.distributed and not dist.is_initialized():
        if use_cuda:
            torch.cuda.set_device(world.local_rank)
        dist.init_process_group("nccl" if use_cuda else "gloo")
    _world = world
    return world


def current_world() -> World:
    return _world


def broadcast(value: Any) -> Any:
    """Rank 0's ``value`` in every process (a run directory's name, which has the time in it)."""
    if not _world.distributed:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def loss_scale(rows: int, batch: int) -> float:
    """What this process's mean loss over ``rows`` of a ``batch`` is multiplied by before backward, so that DDP's
    average over the processes is the gradient of the whole batch's mean loss: sum over the rows / batch, times the
    number of processes. The scaling must be on the loss, not the gradients: a synchronised BatchNorm carries every
    process's loss into every other's gradient, and only a scaled loss weights those paths too."""
    return rows / batch * _world.size


def summed(tensor: torch.Tensor) -> torch.Tensor:
    """The tensor summed over the processes (no gradient)."""
    if _world.distributed:
        dist.all_reduce(tensor)
    return tensor


def finish() -> None:
    """Leave the process group once every process is done: without the barrier a process that leaves while rank 0
    still writes can abort the others ("terminate called without an active exception", 2 of 9 runs here)."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def parallel(model: nn.Module) -> nn.Module:
    """The model as the training step calls it: in DistributedDataParallel, which averages the processes' gradients
    during backward (``loss_scale`` makes the average the global batch's gradient). BatchNorm layers synchronise
    themselves (``model.SyncedBatchNorm2d``) and their running statistics stay equal in every process, so DDP need
    not broadcast buffers."""
    if not _world.distributed:
        return model
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
    return _SumOverProcesses.apply(tensor) if _world.distributed else tensor
