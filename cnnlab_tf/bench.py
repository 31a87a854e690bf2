"""The TensorFlow/Keras benchmark worker, started by ``python -m shared.bench`` in a process of its own. Mirrors
``cnnlab_torch.bench``; the tasks both frameworks share (the cnnlab loop, the frozen-feature cache) are in
``shared.measure.worker``, and what a model costs to train and serve (memory, latency) in
``shared.measure.footprint_worker``."""

from __future__ import annotations

if __name__ == "__main__":  # the flags first: a mistake is answered before the framework loads (and logs)
    from shared.measure.worker import worker_parser
    from shared.util.flags import parse_or_exit

    parse_or_exit(worker_parser("tf"), None)

import sys
import time

import numpy as np

import keras
import tensorflow as tf

from cnnlab_tf.backend import BACKEND
from cnnlab_tf.optimizer import make_optimizer
from shared.measure.worker import bench_config, call_seconds, run_worker, seeded_model, synthetic_data
from shared.measure.footprint_worker import WorkerKit, footprint_tasks
from shared.measure.memory import DevicePeak


class _EpochTimer(keras.callbacks.Callback):
    """Seconds per epoch of ``model.fit``, read after the epoch's loss has reached the host."""

    def __init__(self):
        super().__init__()
        self.epoch_seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        float(logs["loss"])  # waits for the epoch's last step, on any device
        self.epoch_seconds.append(time.perf_counter() - self.started)


def time_matmul(size: int, repeats: int) -> dict:
    """Seconds per float32 ``size`` x ``size`` matmul in each repeat: a check on PyTorch's, which is the peak."""
    a, b = (tf.random.normal((size, size)) for _ in range(2))

    def matmul() -> None:
        float(tf.matmul(a, b)[0, 0])  # reading one element waits for the product

    return {"seconds": call_seconds(matmul, repeats)}


def time_reference_loop(arch: str, classes: int, image_size: int, batch_size: int, steps: int, repeats: int) -> dict:
    """Keras's own loop, ``model.fit`` on float32 arrays, with the same model, data and optimizer as the cnnlab loop
    (cnnlab's ``TorchAdam``, so only the loop differs) and Keras's default XLA rule."""
    config = bench_config(arch, batch_size, repeats)
    _, model = seeded_model(BACKEND, arch, classes, image_size, config.precision)
    # jit_compile="auto" means XLA when the machine has a GPU, judged on its physical devices: a GPU hidden by
    # --device cpu would still count. The same rule, on the devices TensorFlow computes on:
    xla = bool(tf.config.list_logical_devices("GPU"))
    model.compile(optimizer=make_optimizer(model, config),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=xla)
    train, _ = synthetic_data(image_size, classes, steps * batch_size, 0)
    timer = _EpochTimer()
    model.fit(train.images.astype(np.float32), train.labels, batch_size=batch_size, epochs=config.epochs,
              shuffle=True, verbose=0, callbacks=[timer])
    return {"epoch_seconds": timer.epoch_seconds, "jit_compile": xla}


def set_threads(threads: int) -> None:
    """``threads`` for each operator, and one inter-op thread, as onnxruntime's sessions are set up; TensorFlow
    reads both when it starts, so the worker calls this first."""
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)


def _on_gpu() -> bool:
    return bool(tf.config.list_logical_devices("GPU"))


def _reset_gpu_peak() -> None:
    if _on_gpu():
        tf.config.experimental.reset_memory_stats("GPU:0")


def _gpu_peak() -> int | None:
    return int(tf.config.experimental.get_memory_info("GPU:0")["peak"]) if _on_gpu() else None


KIT = WorkerKit(BACKEND, DevicePeak(_reset_gpu_peak, _gpu_peak, "tf.config.experimental.get_memory_info peak"),
                {})


def main(argv: list[str] | None = None) -> int:
    return run_worker(BACKEND, {"matmul": time_matmul, "reference_loop": time_reference_loop,
                                **footprint_tasks(KIT)}, argv, set_threads)


if __name__ == "__main__":
    sys.exit(main())
