"""Several processes training one model, framework-neutral: which process this is, and its share of each batch.

``torchrun`` starts one process per device and tells each its place through the environment (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``); a TensorFlow worker learns its place from ``TF_CONFIG`` (its own devices are
replicas inside the process). Every process draws the same global batch from ``shared.training.loop`` and takes its own
contiguous slice of it, so the processes together compute the step a single process computes on the whole batch:
the batch size stays the global one, and the result is the single-process result up to the all-reduce's rounding.
Rank 0 alone writes the run directory and prints.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Mapping

from shared.util.errors import UsageError


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
        """Several processes (torchrun's, or TensorFlow workers under TF_CONFIG); a process's own replicas
        (tf.distribute's devices) do not count."""
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


def from_tf_config(environ: Mapping[str, str] = os.environ) -> World:
    """The worker's place as ``TF_CONFIG`` gives it to MultiWorkerMirroredStrategy: the chief, if the cluster names
    one, is rank 0 and the workers follow in order; without a chief, worker 0 is rank 0 (TensorFlow's own rule for
    which worker writes). One process when it is not set."""
    if not environ.get("TF_CONFIG"):
        return World()
    try:
        config = json.loads(environ["TF_CONFIG"])
        cluster, task = config["cluster"], config["task"]
        chiefs, workers = len(cluster.get("chief", [])), len(cluster.get("worker", []))
        kind, index = task["type"], int(task["index"])
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise UsageError(f"TF_CONFIG is not a cluster ({type(error).__name__}: {error}); it must read like "
                         f'{{"cluster": {{"worker": ["host1:port", "host2:port"]}}, "task": {{"type": "worker", '
                         f'"index": 0}}}}') from None
    if set(cluster) - {"chief", "worker"} or kind not in ("chief", "worker") or chiefs > 1:
        raise UsageError(f"TF_CONFIG: cnnlab trains with MultiWorkerMirroredStrategy, whose cluster has workers and "
                         f"at most one chief; this one has {sorted(cluster)} and the task is a {kind!r}")
    rank = index if kind == "chief" else chiefs + index
    world = World(rank, chiefs + workers)
    if not 0 <= rank < world.size or (kind == "chief" and index != 0):
        raise UsageError(f"TF_CONFIG: task {kind} {index} is not in the cluster {cluster}")
    return world


def launched_world(framework: str) -> World:
    """The place the launcher gave this process: torchrun's variables for PyTorch, TF_CONFIG for TensorFlow."""
    return from_tf_config() if framework == "tf" else from_environment()
