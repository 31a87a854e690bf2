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


def _cross_entropy(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """Mean cross-entropy over the batch, like ``F.cross_entropy``, in the logits' own dtype (a
    ``keras.losses.Loss`` object would cast to the global floatx)."""
    return ops.mean(keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True))


def train_step(model: keras.Model, optimizer: keras.optimizers.Optimizer, images: tf.Tensor,
               labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """One optimizer step on a batch of float NHWC images; returns the batch's mean loss and correct count as
    0-d tensors, left on the device (reading them is a sync, which the caller does once per batch)."""
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


def fit(model: keras.Model, optimizer: keras.optimizers.Optimizer, train: Dataset, val: Dataset,
        config: TrainConfig, on_epoch_end: Callable[[dict], None] = lambda record: None,
        first_epoch: int = 1) -> list[dict]:
    """Epochs ``first_epoch``..``config.epochs`` with the shared batch order, validating after every epoch."""
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
                      on_epoch_end, first_epoch)
