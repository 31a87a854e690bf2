"""Where the PyTorch backend computes. ``select_device`` is called once, before any model is built; the backend
(``cnnlab_torch.backend.TorchBackend``) keeps what it chose and builds its models there."""

from __future__ import annotations

import torch

from cnnlab_torch.distributed import start
from shared.training.distributed import DEFAULT_PEER_TIMEOUT, World
from shared.util.errors import UsageError

CPU = torch.device("cpu")


def select_device(name: str, replicas: int = 1,
                  peer_timeout: float = DEFAULT_PEER_TIMEOUT) -> tuple[str, torch.device, World]:
    """(a description, the device, this process's place). ``auto`` picks CUDA when torch sees a GPU; ``cuda``
    without one is a usage error. Several devices are several processes (torchrun), so ``replicas`` must be 1; the
    other processes are waited for at most ``peer_timeout`` seconds."""
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: torch sees no CUDA GPU here; use --device cpu or --device auto")
    use_cuda = name == "cuda" or (name == "auto" and torch.cuda.is_available())
    # under torchrun: join the other processes; each uses the GPU of its local rank
    world = start(use_cuda, replicas, peer_timeout)
    device = torch.device("cuda", world.local_rank) if use_cuda else CPU
    processes = f", {world.size} processes (DDP, {'NCCL' if use_cuda else 'gloo'})" if world.distributed else ""
    if use_cuda:
        # TF32 matmuls trade ~1e-3 relative precision for speed; keep float32 so runs compare across frameworks.
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        return f"cuda ({torch.cuda.get_device_name(device)}){processes}", device, world
    return f"cpu{processes}", device, world
