"""Where the TensorFlow backend computes. ``select_device`` is called once, before any model is built, because
TensorFlow fixes its visible devices when it first runs an op; the backend (``cnnlab_tf.backend.KerasBackend``)
keeps what it chose."""

from __future__ import annotations

import tensorflow as tf

from cnnlab_tf.distributed import start
from shared.training.distributed import DEFAULT_PEER_TIMEOUT, World
from shared.util.errors import UsageError
from shared.util.native_stderr import TENSORFLOW_START_UP_NOTES, filtered


def select_device(name: str, replicas: int = 1,
                  peer_timeout: float = DEFAULT_PEER_TIMEOUT) -> tuple[str, World, tf.distribute.Strategy | None]:
    """(a description, this process's place, the strategy to build models under). ``auto`` uses the GPU when TensorFlow
    sees one; ``cuda`` without one is a usage error. ``replicas`` > 1 mirrors the model over that many GPUs, or CPU
    logical devices (``cnnlab_tf.distributed``); under TF_CONFIG the other workers are waited for at most
    ``peer_timeout`` seconds."""
    # the first device listing probes CUDA, which a CPU machine answers with notes
    with filtered(TENSORFLOW_START_UP_NOTES):
        gpus = tf.config.list_physical_devices("GPU")
    if name == "cuda" and not gpus:
        raise UsageError("--device cuda: TensorFlow sees no CUDA GPU here; use --device cpu or --device auto")
    if name == "cpu" and gpus:
        tf.config.set_visible_devices([], "GPU")
    use_cuda = name != "cpu" and bool(gpus)
    world, strategy = start(use_cuda, replicas, peer_timeout)
    mirrored = f", {world.devices} replicas (MirroredStrategy)" if world.devices > 1 else ""
    if world.distributed:
        mirrored = f", {world.size} workers x {world.devices} replica(s) (MultiWorkerMirroredStrategy)"
    if use_cuda:
        # TF32 trades ~1e-3 relative precision for speed; keep float32 so runs compare across frameworks.
        tf.config.experimental.enable_tensor_float_32_execution(False)
        return f"cuda ({gpus[0].name}){mirrored}", world, strategy
    return f"cpu{mirrored}", world, strategy
