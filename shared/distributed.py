"""Several processes training one model, framework-neutral: which process this is, and its share of each batch.

``torchrun`` starts one process per device and tells each its place through the environment (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``). Every process draws the same global batch from ``shared.loop`` and takes its own
contiguous slice of it, so the processes together compute the step a single process computes on the whole batch:
the batch size stays the global one, and the result is the single-process result up to the all-reduce's rounding.
Rank 0 alone writes the run directory and prints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

from shared.errors import UsageError


@dataclass(frozen=True)
class World:
    rank: int = 0  # this process, 0..size-1
    size: int = 1  # processes in all
    local_rank: int = 0  # this process on its machine: the GPU it uses
    devices: int = 1  # replicas inside this process: tf.distribute's devices (torchrun gives each process one)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """Several processes (torchrun); a process's own replicas (tf.distribute) do not count."""
        return self.size > 1

    @property
    def replicas(self) -> int:
        """Copies of the model that train together, each on its rows of every batch."""
        return self.size * self.devices

    def share(self, count: int) -> slice:
        """This process's rows of a batch of ``count``: contiguous, sizes differing by at most one."""
        bounds = [count * part // self.size for part in range(self.size + 1)]
        return slice(bounds[self.rank], bounds[self.rank + 1])


def from_environment(environ: Mapping[str, str] = os.environ) -> World:
    """The process's place as torchrun sets it; one process when it is not set."""
    if "WORLD_SIZE" not in environ:
        return World()
    try:
        world = World(int(environ["RANK"]), int(environ["WORLD_SIZE"]), int(environ.get("LOCAL_RANK", "0")))
    except (KeyError, ValueError):
        raise UsageError(f"WORLD_SIZE={environ.get('WORLD_SIZE')!r} and RANK={environ.get('RANK')!r} are not a "
                         f"process's place; start several processes with torchrun --nproc_per_node N") from None
    if not 0 <= world.rank < world.size:
        raise UsageError(f"RANK={world.rank} is outside WORLD_SIZE={world.size}; start the processes with torchrun")
    return world
