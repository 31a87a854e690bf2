"""--precision in PyTorch: the dtypes each mode trains in, and 16-mixed's loss scaling skipping a step without
advancing Adam. Mirrors cnnlab_tf/tests/test_precision.py."""

import numpy as np
import pytest
import torch

from cnnlab_torch.engine import train_step
from cnnlab_torch.model import build_model, predict_logits
from cnnlab_torch.optimizer import make_optimizer
from cnnlab_torch.precision import loss_scaler
from cnnlab_torch.weights import get_weights, set_weights
from shared.training.config import TrainConfig
from shared.model.init import initial_weights
from shared.training.precision import LOSS_SCALE_INITIAL, PRECISIONS
from shared.model.registry import build_spec

SPEC = build_spec("cifar_cnn_max", 3, 32)


def trained_once(precision: str):
    model = build_model(SPEC, precision)
    set_weights(model, SPEC, initial_weights(SPEC, 0))
    optimizer = make_optimizer(model, TrainConfig(precision=precision))
    images = torch.from_numpy(np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)))
    return model, optimizer, images.to(next(model.parameters()).dtype), torch.tensor([0, 1, 2, 0])


@pytest.mark.parametrize("precision", sorted(PRECISIONS))
def test_each_mode_computes_in_its_dtypes(precision):
    model, optimizer, images, labels = trained_once(precision)
    seen = []
    model.conv1.register_forward_hook(lambda module, inputs, output: seen.append(output.dtype))
    loss, _ = train_step(model, optimizer, images, labels, loss_scaler(precision, optimizer))
    mode = PRECISIONS[precision]
    assert seen == [getattr(torch, mode.compute)], f"{precision}: conv1 computed in {seen}"
    assert loss.dtype == getattr(torch, mode.variables)
    assert {param.dtype for param in model.parameters()} == {getattr(torch, mode.variables)}
    assert predict_logits(model, images.numpy(), 2).dtype == np.float32


def test_a_step_with_overflowing_gradients_is_skipped_without_advancing_adam():
    model, optimizer, images, labels = trained_once("16-mixed")
    scaler = loss_scaler("16-mixed", optimizer)
    train_step(model, optimizer, images, labels, scaler)
    steps = {int(state["step"]) for state in optimizer.state.values()}
    before = get_weights(model, SPEC)
    poisoned = images.clone()
    poisoned[0, 0, 0, 0] = float("inf")  # the gradients become non-finite, as an overflow makes them
    train_step(model, optimizer, poisoned, labels, scaler)
    assert {int(state["step"]) for state in optimizer.state.values()} == steps == {1}
    after = get_weights(model, SPEC)
    assert all(np.array_equal(before[name], after[name]) for name in before if "running" not in name)
    assert scaler.get_scale() == LOSS_SCALE_INITIAL / 2
    train_step(model, optimizer, images, labels, scaler)
    assert {int(state["step"]) for state in optimizer.state.values()} == {2}


def test_no_scaler_outside_16_mixed():
    model, optimizer, *_ = trained_once("bf16-mixed")
    assert loss_scaler("bf16-mixed", optimizer) is None and loss_scaler("32-true", optimizer) is None
