"""Several processes training one model, framework-neutral: which process this is, and its share of each batch.

``torchrun`` starts one process per device and tells each its place through the environment (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``); a TensorFlow worker learns its place from ``TF_CONFIG`` (its own devices are
replicas inside the process). Every process draws the same global batch from ``shared.training.loop`` and takes its own
contiguous slice of it, so the processes together compute the step a single process computes on the whole batch:
the batch size stays the global one, and the result is the single-process result up to the all-reduce's rounding.
Rank 0 alone writes the run directory and prints.

Processes that never meet must not hang: a worker waits for the others at most ``--peer-timeout`` seconds, in short
steps that leave Ctrl-C and SIGTERM working, and then names the addresses that never answered.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from dataclasses import dataclass
from collections.abc import Iterator, Mapping

from shared.util.errors import UsageError

DEFAULT_PEER_TIMEOUT = 300.0  # seconds a process waits for the others to start (--peer-timeout)
POLL_SECONDS = 0.25  # between two looks for the peers: a signal waits at most this long (plus a connect) to act
CONNECT_SECONDS = 1.0  # the longest one look at an address may take (an address that drops packets)
NOTE_AFTER_SECONDS = 5.0  # a wait longer than this says once, on stderr, what it waits for


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


@dataclass(frozen=True)
class Task:
    """One process of a TF_CONFIG cluster: ``chief 0``, ``worker 1``, and the host:port its gRPC server listens on."""
    kind: str
    index: int
    address: str

    def __str__(self) -> str:
        return f"{self.kind} {self.index} at {self.address}"


def from_tf_config(environ: Mapping[str, str] = os.environ) -> World:
    """The worker's place as ``TF_CONFIG`` gives it to MultiWorkerMirroredStrategy: the chief, if the cluster names
    one, is rank 0 and the workers follow in order; without a chief, worker 0 is rank 0 (TensorFlow's own rule for
    which worker writes). One process when it is not set."""
    if not environ.get("TF_CONFIG"):
        return World()
    cluster, task = _read_tf_config(environ["TF_CONFIG"])
    chiefs = len(cluster.get("chief", []))
    rank = task.index if task.kind == "chief" else chiefs + task.index
    return World(rank, chiefs + len(cluster.get("worker", [])))


def tf_config_tasks(environ: Mapping[str, str] = os.environ) -> tuple[Task, list[Task]]:
    """This process's task in ``TF_CONFIG``'s cluster, and every other task."""
    cluster, me = _read_tf_config(environ["TF_CONFIG"])
    tasks = [Task(kind, index, address) for kind in ("chief", "worker") for index, address in
             enumerate(cluster.get(kind, []))]
    return me, [task for task in tasks if (task.kind, task.index) != (me.kind, me.index)]


def _read_tf_config(text: str) -> tuple[dict[str, list[str]], Task]:
    """The cluster and this task, checked: TensorFlow's own checks come later, and as tracebacks."""
    try:
        config = json.loads(text)
        cluster, task = config["cluster"], config["task"]
        kind, index = task["type"], int(task["index"])
        addresses = {name: list(cluster[name]) for name in cluster}
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise UsageError(f"TF_CONFIG is not a cluster ({type(error).__name__}: {error}); it must read like "
                         f'{{"cluster": {{"worker": ["host1:port", "host2:port"]}}, "task": {{"type": "worker", '
                         f'"index": 0}}}}') from None
    if set(addresses) - {"chief", "worker"} or kind not in ("chief", "worker") or len(addresses.get("chief", [])) > 1:
        raise UsageError(f"TF_CONFIG: cnnlab trains with MultiWorkerMirroredStrategy, whose cluster has workers and "
                         f"at most one chief; this one has {sorted(addresses)} and the task is a {kind!r}")
    # A chief task in a cluster without one: TensorFlow's "ValueError: task_type 'chief' not found in cluster_spec"
    if not 0 <= index < len(addresses.get(kind, [])):
        tasks = [f"{name} {number}" for name in ("chief", "worker") for number in range(len(addresses.get(name, [])))]
        raise UsageError(f"TF_CONFIG: task {kind} {index} is not in the cluster {cluster}; its tasks are "
                         f"{', '.join(tasks) or 'none'}")
    for address in (address for group in addresses.values() for address in group):
        try:
            _host_and_port(address)
        except ValueError:
            raise UsageError(f"TF_CONFIG: {address!r} is not an address; each task's must read host:port") from None
    return addresses, Task(kind, index, addresses[kind][index])


def _host_and_port(address: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:port`` for IPv6) as a host and a port number; ValueError otherwise."""
    host, _, port = str(address).rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{address!r} is not host:port")
    return host.strip("[]"), int(port)


def wait_for_tasks(me: Task, others: list[Task], seconds: float) -> None:
    """Wait until every other task of the cluster accepts a connection at its address, at most ``seconds``; a usage
    error naming those that never did. The wait sleeps in short steps, so Ctrl-C and SIGTERM stop it (TensorFlow's
    own wait for the cluster holds the interpreter and ignores both). While it waits, this task's own address
    accepts connections too: each task's TensorFlow server only starts once its strategy is built, after the
    wait, so tasks that polled without listening would each wait for the others forever."""
    deadline, started = time.monotonic() + seconds, time.monotonic()
    with _listening(me):
        silent = {task: "" for task in others}  # task -> why its last look failed
        noted = False
        while True:
            for task in list(silent):
                reason = _no_answer(task.address, max(0.05, min(CONNECT_SECONDS, deadline - time.monotonic())))
                if reason is None:
                    del silent[task]  # it has started; its strategy will wait for the rest
                else:
                    silent[task] = reason
            if not silent:
                return
            if time.monotonic() >= deadline:
                missing = ", ".join(f"{task} ({reason})" for task, reason in silent.items())
                raise UsageError(f"TF_CONFIG: no answer within {seconds:g} s from {missing}; start every task of "
                                 f"the cluster (this is {me}), check the addresses, or wait longer with "
                                 f"--peer-timeout SECONDS")
            if not noted and time.monotonic() - started > NOTE_AFTER_SECONDS:
                noted = True
                print(f"waiting up to {seconds:g} s for {', '.join(map(str, silent))} (TF_CONFIG)",
                      file=sys.stderr, flush=True)
            time.sleep(POLL_SECONDS)


def address_answers(address: str, seconds: float = CONNECT_SECONDS) -> bool:
    """Whether something accepts a connection at ``host:port`` now."""
    try:
        return _no_answer(address, seconds) is None
    except ValueError:  # not an address
        return False


def _no_answer(address: str, seconds: float) -> str | None:
    """None when ``address`` accepts a connection, else why not (refused, unknown host, timed out)."""
    try:
        with socket.create_connection(_host_and_port(address), timeout=seconds):
            return None
    except OSError as error:
        return error.strerror or type(error).__name__


@contextlib.contextmanager
def _listening(me: Task) -> Iterator[None]:
    """This task's port open while the block runs, so that the others' ``wait_for_tasks`` find it; closed after,
    for TensorFlow's server to take it over."""
    _, port = _host_and_port(me.address)
    try:
        if socket.has_dualstack_ipv6():
            server = socket.create_server(("", port), family=socket.AF_INET6, dualstack_ipv6=True)
        else:
            server = socket.create_server(("", port))
    except OSError as error:
        raise UsageError(f"TF_CONFIG: this task ({me}) cannot listen on port {port}: {error.strerror}; give it a "
                         f"free port") from None
    with server:
        yield


def usable_cores() -> int:
    """The CPU cores this process may run on: its affinity where the system has one (a container or a job
    scheduler may allow fewer than the machine has), else the machine's."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def check_cpu_replicas(replicas: int) -> None:
    """More CPU replicas than cores is refused. The replicas are logical devices of one process that share its
    cores, so the extra ones add no speed, only waiting: --replicas 1000 on 2 cores never finished a batch."""
    cores = usable_cores()
    if replicas > cores:
        raise UsageError(f"--replicas {replicas}: this process may use {cores} CPU core(s), which CPU replicas "
                         f"share, so more replicas than cores add no speed, only waiting (far more never finish a "
                         f"step); use at most --replicas {cores}, or GPUs")


def check_batches_fill_replicas(train_count: int, batch_size: int, replicas: int) -> None:
    """Every replica trains on its rows of every batch, so every batch needs a row per replica: a replica with none
    would average an empty loss. The epoch's last batch holds what is left over and may be the smallest."""
    sizes = [min(batch_size, train_count)] + ([train_count % batch_size] if train_count % batch_size else [])
    if replicas > 1 and min(sizes) < replicas:
        raise UsageError(f"--batch-size {batch_size}: with {train_count} training images an epoch's "
                         f"{'last ' if min(sizes) != sizes[0] else ''}batch holds {min(sizes)} image(s), fewer "
                         f"than the {replicas} replicas, so a replica would have none; choose a batch size that "
                         f"leaves each replica a row of every batch, or fewer replicas")


def launched_world(framework: str) -> World:
    """The place the launcher gave this process: torchrun's variables for PyTorch, TF_CONFIG for TensorFlow."""
    return from_tf_config() if framework == "tf" else from_environment()
