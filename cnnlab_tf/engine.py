"""Training and evaluation in TensorFlow/Keras. Mirrors ``cnnlab_torch.engine`` section by section; only the
autograd lines differ."""

from __future__ import annotations

from typing import Callable

import numpy as np

import keras
import tensorflow as tf
from keras import ops

from cnnlab_tf.model import predict_logits
from shared.config import TrainConfig
from shared.data import Dataset
from shared.loop import run_epochs
from shared.metrics import accuracy, cross_entropy


@keras.saving.register_keras_serializable(package="cnnlab")
class TorchAdam(keras.optimizers.Adam):
    """Adam with ``torch.optim.Adam``'s update rule.

    Keras adds epsilon to the *uncorrected* sqrt(v), PyTorch to the bias-corrected one, so equal hyperparameters
    still give different steps: after one epoch on the digits, weights differed by 2e-3 and 0.8% of predictions
    flipped (parity-pitfalls.md). This writes PyTorch's formula out:
        m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
        p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
    ``l2`` is torch.optim.Adam's weight_decay (added to the gradient), not Keras's decoupled ``weight_decay``.
    """

    def __init__(self, learning_rate, beta_1, beta_2, epsilon, l2=0.0, **kwargs):
        super().__init__(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, **kwargs)
        self.l2 = l2

    def update_step(self, gradient, variable, learning_rate):
        # Step by step as torch.optim.Adam does it, down to where it rounds: the bias corrections and the step size
        # are float64 scalars (Python floats in PyTorch) rounded once to the variable's dtype. Note ops.cast(0.999,
        # dtype) would first make a float32 0.99900001, and 1 - 0.999**t in float32 is off by 1.3e-5 at t = 1.
        dtype = variable.dtype
        step = ops.cast(self.iterations + 1, "float64")
        bias_correction1 = 1.0 - ops.power(ops.convert_to_tensor(self.beta_1, "float64"), step)
        bias_correction2 = 1.0 - ops.power(ops.convert_to_tensor(self.beta_2, "float64"), step)
        step_size = ops.cast(ops.cast(learning_rate, "float64") / bias_correction1, dtype)
        bias_correction2_sqrt = ops.cast(ops.sqrt(bias_correction2), dtype)
        gradient = ops.cast(gradient, dtype)
        if self.l2:
            gradient = gradient + ops.convert_to_tensor(self.l2, dtype) * variable
        m = self._momentums[self._get_variable_index(variable)]
        v = self._velocities[self._get_variable_index(variable)]
        # m.lerp_(g, 1 - b1) and v.mul_(b2).addcmul_(g, g, value=1 - b2)
        self.assign(m, m + ops.convert_to_tensor(1.0 - self.beta_1, dtype) * (gradient - m))
        self.assign(v, v * ops.convert_to_tensor(self.beta_2, dtype)
                    + ops.convert_to_tensor(1.0 - self.beta_2, dtype) * ops.square(gradient))
        denominator = ops.sqrt(v) / bias_correction2_sqrt + ops.convert_to_tensor(self.epsilon, dtype)
        self.assign_sub(variable, step_size * (m / denominator))

    def get_config(self):
        return {**super().get_config(), "l2": self.l2}


def make_optimizer(model: keras.Model, config: TrainConfig) -> keras.optimizers.Optimizer:
    """Adam with every hyperparameter from the config and PyTorch's update rule."""
    optimizer = TorchAdam(learning_rate=config.lr, beta_1=config.beta1, beta_2=config.beta2, epsilon=config.eps,
                          l2=config.weight_decay)
    optimizer.build(model.trainable_variables)  # its slots must exist before the compiled step first runs
    return optimizer


def _cross_entropy(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """Mean cross-entropy over the batch, like ``F.cross_entropy``, in the logits' own dtype (a
    ``keras.losses.Loss`` object would cast to the global floatx)."""
    return ops.mean(keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True))


def train_step(model: keras.Model, optimizer: keras.optimizers.Optimizer, images: tf.Tensor,
               labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """One optimizer step on a batch of float NHWC images; returns the batch's mean loss and correct count."""
    # Forward
    with tf.GradientTape() as tape:
        logits = model(images, training=True)
        loss = _cross_entropy(labels, logits)
    # Backward and update
    gradients = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(gradients, model.trainable_variables))
    # Statistics of the batch, on the logits before the update
    correct = tf.reduce_sum(tf.cast(tf.argmax(logits, axis=1) == labels, tf.int32))
    return loss, correct


def evaluate(model: keras.Model, data: Dataset, batch_size: int) -> tuple[float, float]:
    """Mean cross-entropy and accuracy in inference mode."""
    logits = predict_logits(model, data.images, batch_size)
    return cross_entropy(logits, data.labels), accuracy(logits, data.labels)


def fit(model: keras.Model, train: Dataset, val: Dataset, config: TrainConfig,
        on_epoch_end: Callable[[dict], None] = lambda record: None) -> list[dict]:
    """Train for ``config.epochs`` with the shared batch order, validating after every epoch."""
    optimizer = make_optimizer(model, config)
    # The uint8 training set lives on the device once; each step gathers its batch there.
    images = tf.constant(train.images)
    labels = tf.constant(train.labels)
    # Compiled per fit, not once per process: a compiled step may only create variables on its first trace.
    compiled_step = tf.function(train_step, reduce_retracing=True)

    def step(indices: np.ndarray) -> tuple[float, int]:
        index = tf.constant(indices)
        loss, correct = compiled_step(model, optimizer, tf.cast(tf.gather(images, index), tf.float32),
                                        tf.gather(labels, index))
        return float(loss), int(correct)

    return run_epochs(step, lambda: evaluate(model, val, config.batch_size), len(train.labels), config,
                      on_epoch_end)
