"""The float32 noise floor of one epoch: how far a framework drifts from *itself* when a single initial weight moves
by one ulp, against how far the two frameworks drift from each other from identical weights. Training amplifies
rounding (Adam divides each step by a gradient's own running size; near-cancelling gradient sums flip sign), so a
one-epoch comparison can only be as tight as this floor. Used by test_noise_floor.py and printable on its own:

    python -m parity_tests.noise_floor
"""

from __future__ import annotations

from dataclasses import replace

import parity_tests.frameworks  # noqa: F401  (first: the import order of torch, triton and tensorflow)

import numpy as np

import cnnlab_tf.backend
import cnnlab_torch.backend
from shared.config import TrainConfig
from shared.experiments import DataOptions, prepare_data
from shared.init import initial_weights
from shared.registry import build_spec

BACKENDS = {"torch": cnnlab_torch.backend.BACKEND, "tf": cnnlab_tf.backend.BACKEND}
NUDGED = "conv1.weight"  # the first layer's first weight: every later activation depends on it


def one_epoch_logits(framework: str, seed: int, nudge: bool = False, precision: str = "32-true") -> np.ndarray:
    """Validation logits after one epoch of the default run (cifar_cnn_max on the digits), in-process; ``nudge``
    moves the first weight of ``NUDGED`` up by one float32 ulp before training."""
    backend = BACKENDS[framework]
    config = TrainConfig(epochs=1, seed=seed, precision=precision)
    data = prepare_data(DataOptions("digits", None, None, None, config.val_fraction, seed))
    spec = build_spec(config.arch, len(data.train.class_names), data.train.image_size)
    weights = initial_weights(spec, seed)
    if nudge:
        weights[NUDGED] = weights[NUDGED].copy()
        weights[NUDGED].flat[0] = np.nextafter(weights[NUDGED].flat[0], np.float32(np.inf))
    model = backend.build_model(spec, precision)
    backend.set_weights(model, spec, weights)
    optimizer = backend.make_optimizer(model, config)
    backend.fit(model, optimizer, data.train, data.val, replace(config, arch=spec.name))
    return backend.predict_logits(model, data.val.images, config.batch_size)


def measure(seed: int) -> dict:
    """Max |logit difference| on the validation images: torch vs torch nudged, tf vs tf nudged, torch vs tf."""
    torch_logits, tf_logits = one_epoch_logits("torch", seed), one_epoch_logits("tf", seed)
    scale = float(np.abs(torch_logits).max())
    return {"seed": seed, "largest_logit": scale,
            "torch_self": float(np.abs(one_epoch_logits("torch", seed, nudge=True) - torch_logits).max()),
            "tf_self": float(np.abs(one_epoch_logits("tf", seed, nudge=True) - tf_logits).max()),
            "cross": float(np.abs(tf_logits - torch_logits).max()),
            "argmax_agreement": float((tf_logits.argmax(1) == torch_logits.argmax(1)).mean())}


if __name__ == "__main__":
    for seed in range(3):
        print(measure(seed))
