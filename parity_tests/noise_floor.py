"""The float32 noise floor of one epoch: how far a framework drifts from *itself* when a single initial weight moves
by one ulp, against how far the two frameworks drift from each other from identical weights. Training amplifies
rounding (Adam divides each step by a gradient's own running size; near-cancelling gradient sums flip sign), so a
one-epoch comparison can only be as tight as this floor. Used by test_noise_floor.py and printable on its own:

    python -m parity_tests.noise_floor
"""

from __future__ import annotations

if __name__ == "__main__":  # the flags first: --help or a mistyped flag is answered before a framework loads
    from shared.util.flags import OneLineParser, parse_or_exit

    parse_or_exit(OneLineParser(prog="python -m parity_tests.noise_floor", description=__doc__.splitlines()[0]), None)

from dataclasses import replace

import parity_tests.frameworks  # noqa: F401  (first: the import order of torch, triton and tensorflow)

import numpy as np

import cnnlab_tf.backend
import cnnlab_torch.backend
from shared.training.config import TrainConfig
from shared.run.experiments import DataOptions, prepare_data
from shared.model.init import initial_weights
from shared.model.registry import build_spec

BACKENDS = {"torch": cnnlab_torch.backend.BACKEND, "tf": cnnlab_tf.backend.BACKEND}
# One weight and the bias of the first, the middle and the last layer. A single nudge flips only some of the rounding
# events a run passes near, so the floor is the largest drift over several: measured with one nudge, it missed
# events that the other framework's run happened to cross, and with the three weights alone it missed them too once
# the suite ran one thread per worker (seed 0: the frameworks 0.149 apart, the weights' nudges 0.0039; the biases'
# nudges of conv2 and fc move PyTorch's own run by the same 0.149).
NUDGED = ("conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc.weight", "fc.bias")


def one_epoch_logits(framework: str, seed: int, nudge: str | None = None, precision: str = "32-true") -> np.ndarray:
    """Validation logits after one epoch of the default run (cifar_cnn_max on the digits), in-process; ``nudge``
    names a parameter whose first weight moves up by one float32 ulp before training."""
    backend = BACKENDS[framework]
    config = TrainConfig(epochs=1, seed=seed, precision=precision)
    data = prepare_data(DataOptions("digits", None, None, None, config.val_fraction, seed))
    spec = build_spec(config.arch, len(data.train.class_names), data.train.image_size)
    weights = initial_weights(spec, seed)
    if nudge:
        weights[nudge] = weights[nudge].copy()
        weights[nudge].flat[0] = np.nextafter(weights[nudge].flat[0], np.float32(np.inf))
    model = backend.build_model(spec, precision)
    backend.set_weights(model, spec, weights)
    optimizer = backend.make_optimizer(model, config)
    backend.fit(model, optimizer, data.train, data.val, replace(config, arch=spec.name))
    return backend.predict_logits(model, data.val.images, config.batch_size)


def self_drift(framework: str, seed: int, logits: np.ndarray) -> float:
    """The largest max |logit difference| between a run and its nudged runs."""
    return max(float(np.abs(one_epoch_logits(framework, seed, name) - logits).max()) for name in NUDGED)


def measure(seed: int) -> dict:
    """Max |logit difference| on the validation images: each framework against its nudged runs, torch vs tf."""
    torch_logits, tf_logits = one_epoch_logits("torch", seed), one_epoch_logits("tf", seed)
    return {"seed": seed, "largest_logit": float(np.abs(torch_logits).max()),
            "torch_self": self_drift("torch", seed, torch_logits), "tf_self": self_drift("tf", seed, tf_logits),
            "cross": float(np.abs(tf_logits - torch_logits).max()),
            "argmax_agreement": float((tf_logits.argmax(1) == torch_logits.argmax(1)).mean())}


if __name__ == "__main__":
    for seed in range(3):
        print(measure(seed))
