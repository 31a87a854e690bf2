"""Optimizer steps, both frameworks, from identical weights on identical batches: the updated weights agree.

This is the sharp form of "trained the same way, they train the same", on every registered spec. It runs in float64
because in float32 the claim cannot be checked step by step: Adam divides each gradient element by its own running
magnitude, so an element whose gradient is a near-cancelling sum (a weight fed by a rarely active channel, |g| ~
5e-8, 2% rounding) takes differently sized steps of up to lr in the two frameworks, and a ReLU whose input lies
within rounding of zero can route a gradient in one framework and not the other. In float64 rounding is 1e-16 and
neither happens, so what is left is the update rule, the gradients and BatchNorm's statistics, exactly."""

import numpy as np
import pytest

from parity_tests.pairs import STEPS, assert_agree, train_both
from shared.training.config import TrainConfig
from shared.model.registry import ARCHITECTURES


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_adam_steps_give_the_same_weights(arch):
    before, torch_after, keras_after = train_both(arch)
    # Every array, BatchNorm's running statistics included: they move in training mode too.
    for name in before:
        assert_agree(keras_after[name], torch_after[name], "trained_steps", f"{arch} {name} after {STEPS} steps",
                     "64-true")
    # The steps must have moved the weights, or the comparison above proves nothing.
    moved = max(float(np.abs(torch_after[name] - before[name]).max()) for name in before)
    assert moved > TrainConfig().lr, f"{arch}: {STEPS} steps moved no weight by more than {moved:.3g}"
