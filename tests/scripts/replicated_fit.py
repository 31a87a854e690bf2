"""Train one model from the same weights on the same batches, on one device and on two replicas, with the backend's
``fit`` alone: without the command line's validation report and ONNX export, which keeps ResNet-18 cheap enough
for every test run. Writes an .npz file with ``one/<name>`` and/or ``two/<name>`` for every weight and BatchNorm
statistic, and each run's epoch losses (``<run>/losses``).

    python -m tests.scripts.replicated_fit tf ARCH OUT.npz        # both runs, in this process
    python -m tests.scripts.replicated_fit torch ARCH OUT.npz     # one process: "one/"; under torchrun with 2: "two/"

Keras's replicas are the CPU split into two logical devices, which TensorFlow allows only before it first runs an
op, so this is a process of its own (``tests/test_distributed.py`` starts it). PyTorch's replicas are torchrun's
processes; rank 0 writes.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import replace

import numpy as np

from shared.util import progress
from shared.training.config import TrainConfig
from shared.data.dataset import Dataset, load_digits_rgb
from shared.model.init import initial_weights
from shared.model.registry import build_spec

# 27 training images in batches of 9: rows 4 and 5 per replica, three steps; crops and flips on, so the gathers
# through the crops run per replica too. 9 validation images: rows 4 and 5 of one inference batch.
CONFIG = TrainConfig(epochs=1, batch_size=9, precision="64-true", augment_padding=4, augment_flip=True)
TRAIN_IMAGES, VAL_IMAGES = 27, 9


def digits(start: int, count: int) -> Dataset:
    data = load_digits_rgb()  # 32x32: ResNet-18's five halvings leave one pixel
    return Dataset(data.name, data.images[start:start + count], data.labels[start:start + count], data.class_names)


def trained(backend, replicas: int, arch: str) -> tuple[dict[str, np.ndarray], list[dict]]:
    """Weights and history after ``CONFIG``'s epoch on ``replicas`` devices of this process (Keras; the CPU split
    stays from the first call), or on torchrun's processes (PyTorch, ``replicas`` 1)."""
    backend.select_device("cpu", replicas)
    config = replace(CONFIG, arch=arch)
    train, val = digits(0, TRAIN_IMAGES), digits(TRAIN_IMAGES, VAL_IMAGES)
    spec = build_spec(arch, len(train.class_names), train.images.shape[1])
    model = backend.build_model(spec, config.precision)
    backend.set_weights(model, spec, initial_weights(spec, config.seed))
    history = backend.fit(model, backend.make_optimizer(model, config), train, val, config)
    return backend.get_weights(model, spec), history


def arrays(name: str, weights: dict, history: list[dict]) -> dict[str, np.ndarray]:
    saved = {f"{name}/{key}": np.asarray(value, np.float64) for key, value in weights.items()
             if np.asarray(value).dtype.kind == "f"}
    saved[f"{name}/losses"] = np.array([[record["train_loss"], record["val_loss"]] for record in history])
    return saved


def main(framework: str, arch: str, out: str) -> None:
    backend = importlib.import_module(f"cnnlab_{framework}.backend").BACKEND
    results = {}
    if framework == "tf":
        backend.select_device("cpu", 2)  # splits the CPU before anything runs
        for name, replicas in (("one", 1), ("two", 2)):
            results.update(arrays(name, *trained(backend, replicas, arch)))
    else:
        weights, history = trained(backend, 1, arch)
        world = backend.current_world()
        results = arrays("two" if world.distributed else "one", weights, history)
        backend.finish()
        if not world.is_main:
            return
    np.savez(out, **results)


if __name__ == "__main__":
    progress.quiet()  # the test reads only the file
    main(*sys.argv[1:])
