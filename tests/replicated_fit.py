"""Train one Keras model twice in one process, from the same weights on the same batches: on one device, and
mirrored over two CPU logical devices (``cnnlab_tf.distributed``). Writes both results to an .npz file:
``one/<name>`` and ``two/<name>`` for every weight and BatchNorm statistic, and each run's epoch losses.

``python -m tests.replicated_fit ARCH OUT.npz``. It is a process of its own because TensorFlow splits the CPU only
before it first runs an op (``tests/test_distributed.py`` starts it). Only ``fit`` runs, without the command
line's validation report and ONNX export, which keeps ResNet-18 cheap enough for every test run.
"""

from __future__ import annotations

import sys
from dataclasses import replace

import numpy as np

from cnnlab_tf import distributed
from cnnlab_tf.device import select_device
from cnnlab_tf.engine import fit
from cnnlab_tf.model import build_model
from cnnlab_tf.optimizer import make_optimizer
from cnnlab_tf.weights import get_weights, set_weights
from shared.config import TrainConfig
from shared.data import Dataset, load_digits_rgb
from shared.init import initial_weights
from shared.registry import build_spec

# 27 training images in batches of 9: rows 4 and 5 per replica, three steps; crops and flips on, so the gathers
# through the crops run per replica too. 9 validation images: rows 4 and 5 of one inference batch.
CONFIG = TrainConfig(epochs=1, batch_size=9, precision="64-true", augment_padding=4, augment_flip=True)
TRAIN_IMAGES, VAL_IMAGES = 27, 9


def digits(start: int, count: int) -> Dataset:
    data = load_digits_rgb()  # 32x32: ResNet-18's five halvings leave one pixel
    return Dataset(data.name, data.images[start:start + count], data.labels[start:start + count], data.class_names)


def trained(replicas: int, arch: str) -> tuple[dict[str, np.ndarray], list[dict]]:
    distributed.start(use_cuda=False, replicas=replicas)  # the split stays; one replica runs on the first device
    config = replace(CONFIG, arch=arch)
    train, val = digits(0, TRAIN_IMAGES), digits(TRAIN_IMAGES, VAL_IMAGES)
    spec = build_spec(arch, len(train.class_names), train.images.shape[1])
    model = build_model(spec, config.precision)
    set_weights(model, spec, initial_weights(spec, config.seed))
    history = fit(model, make_optimizer(model, config), train, val, config)
    return get_weights(model, spec), history


def main(arch: str, out: str) -> None:
    select_device("cpu", replicas=2)  # splits the CPU before anything runs
    results = {}
    for name, replicas in (("one", 1), ("two", 2)):
        weights, history = trained(replicas, arch)
        results.update({f"{name}/{key}": np.asarray(value, np.float64) for key, value in weights.items()
                        if np.asarray(value).dtype.kind == "f"})
        results[f"{name}/losses"] = np.array([[record["train_loss"], record["val_loss"]] for record in history])
    np.savez(out, **results)


if __name__ == "__main__":
    main(*sys.argv[1:])
