"""The one table of numerical tolerances, each with its reason. Tests and export self-checks read it; nothing else
states a tolerance. Never widen an entry to make a failure pass: find the layer that diverges.

Each value bounds max |actual - expected| for outputs of order one, float32 on CPU. For larger outputs it scales
with the largest reference magnitude, ``bound = value * max(1, max |expected|)``, because float32 rounding is
relative (machine epsilon 1.2e-7, compounded over sums of up to 4,608 products in ResNet-18's 3x3x512 convs).
Measured on ResNet-18 with non-trivial BatchNorm statistics: per-layer relative differences of 1e-6 at every layer,
while activations reach 16, so an absolute 1e-5 would flag rounding there; its logits (order one) differed by
2.4e-6. The bugs the suite plants (flatten order, "same" padding, swapped BatchNorm statistics) differ by order one.
"""

from __future__ import annotations

import numpy as np

TOLERANCES: dict[str, float] = {
    # Same weights, same input, two float32 implementations of the same ops: only summation order differs.
    # Measured on these nets about 1e-7 on small nets; 1e-5 leaves room for the deep ResNet's 20 layers of sums.
    "same_weights": 1e-5,
    # A framework's model against its own ONNX export run by onnxruntime: same ops, another kernel library.
    "onnx_vs_native": 1e-5,
    # Two frameworks trained one epoch from identical weights on identical batches with the same Adam formula.
    # Rounding differences of ~1e-7 per step compound over the epoch's steps; measured ~7e-5 on the seed CIFAR CNN.
    # A wrong optimizer formula (Keras's own Adam epsilon placement) gives ~0.2, so this still separates bugs.
    "trained_one_epoch": 1e-3,
}

# Trained models must also agree on nearly every prediction: logits closer than ``trained_one_epoch`` can still
# flip an argmax when two classes are tied.
MIN_ARGMAX_AGREEMENT = 0.99


def tolerance(kind: str) -> float:
    return TOLERANCES[kind]


def compare(actual: np.ndarray, expected: np.ndarray, kind: str) -> tuple[bool, float, float]:
    """(within tolerance, max |difference|, bound) for the ``kind`` entry of the table."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, f"shapes differ: {actual.shape} vs {expected.shape}"
    difference = float(np.max(np.abs(actual - expected))) if actual.size else 0.0
    bound = TOLERANCES[kind] * max(1.0, float(np.max(np.abs(expected))) if expected.size else 0.0)
    return difference <= bound, difference, bound
