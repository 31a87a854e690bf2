"""--precision in Keras: the dtypes each mode trains in, and 16-mixed's loss scaling skipping a step without
advancing Adam. Mirrors cnnlab_torch/tests/test_precision.py."""

import numpy as np
import pytest
import tensorflow as tf

from cnnlab_tf.engine import train_step
from cnnlab_tf.model import build_model, predict_logits
from cnnlab_tf.optimizer import make_optimizer
from cnnlab_tf.precision import loss_scaler
from cnnlab_tf.weights import get_weights, set_weights
from shared.training.config import TrainConfig
from shared.model.init import initial_weights
from shared.training.precision import LOSS_SCALE_INITIAL, PRECISIONS
from shared.model.registry import build_spec

SPEC = build_spec("cifar_cnn_max", 3, 32)


def trained_once(precision: str):
    model = build_model(SPEC, precision)
    set_weights(model, SPEC, initial_weights(SPEC, 0))
    optimizer = make_optimizer(model, TrainConfig(precision=precision))
    images = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype(model.inputs[0].dtype)
    return model, optimizer, images, tf.constant([0, 1, 2, 0], tf.int64)


@pytest.mark.parametrize("precision", sorted(PRECISIONS))
def test_each_mode_computes_in_its_dtypes(precision):
    model, optimizer, images, labels = trained_once(precision)
    loss, _ = train_step(model, optimizer, tf.constant(images), labels, loss_scaler(precision, optimizer))
    mode = PRECISIONS[precision]
    conv1 = model.get_layer("conv1")
    assert conv1.compute_dtype == mode.compute, f"{precision}: conv1 computes in {conv1.compute_dtype}"
    assert loss.dtype == mode.variables
    assert {variable.dtype for variable in model.weights} == {mode.variables}
    assert predict_logits(model, images, 2).dtype == np.float32


def test_a_step_with_overflowing_gradients_is_skipped_without_advancing_adam():
    model, optimizer, images, labels = trained_once("16-mixed")
    scaler = loss_scaler("16-mixed", optimizer)
    train_step(model, optimizer, tf.constant(images), labels, scaler)
    assert int(optimizer.iterations.numpy()) == 1
    before = get_weights(model, SPEC)
    poisoned = images.copy()
    poisoned[0, 0, 0, 0] = np.inf  # the gradients become non-finite, as an overflow makes them
    train_step(model, optimizer, tf.constant(poisoned), labels, scaler)
    assert int(optimizer.iterations.numpy()) == 1
    after = get_weights(model, SPEC)
    assert all(np.array_equal(before[name], after[name]) for name in before if "running" not in name)
    assert float(scaler.dynamic_scale.numpy()) == LOSS_SCALE_INITIAL / 2
    train_step(model, optimizer, tf.constant(images), labels, scaler)
    assert int(optimizer.iterations.numpy()) == 2


def test_no_scaler_outside_16_mixed():
    model, optimizer, *_ = trained_once("bf16-mixed")
    assert loss_scaler("bf16-mixed", optimizer) is None and loss_scaler("32-true", optimizer) is None
