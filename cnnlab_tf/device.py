"""Where the TensorFlow backend computes. ``select_device`` is called once, before any model is built, because
TensorFlow fixes its visible devices when it first runs an op."""

from __future__ import annotations

import tensorflow as tf

from shared.errors import UsageError
from shared.native_stderr import TENSORFLOW_START_UP_NOTES, filtered


def select_device(name: str) -> str:
    """``auto`` uses the GPU when TensorFlow sees one; ``cuda`` without one is a usage error."""
    with filtered(TENSORFLOW_START_UP_NOTES):  # the first device listing probes CUDA, which a CPU machine answers with notes
        gpus = tf.config.list_physical_devices("GPU")
    if name == "cuda" and not gpus:
        raise UsageError("--device cuda: TensorFlow sees no CUDA GPU here; use --device cpu or --device auto")
    if name == "cpu" and gpus:
        tf.config.set_visible_devices([], "GPU")
    if name != "cpu" and gpus:
        # TF32 trades ~1e-3 relative precision for speed; keep float32 so runs compare across frameworks.
        tf.config.experimental.enable_tensor_float_32_execution(False)
        return f"cuda ({gpus[0].name})"
    return "cpu"
