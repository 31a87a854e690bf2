"""Training and evaluation in TensorFlow/Keras: ``cnnlab_torch.engine``'s functions with the same arguments, and the
same ``steps`` and ``read`` for ``shared.training.loop``. How a group of steps runs differs: here a group of
equal-sized batches is one traced graph call, and the replicas of a tf.distribute strategy run inside this process
(``strategy.run``); PyTorch steps each batch eagerly, one process per replica."""

from __future__ import annotations

import functools
import itertools
import sys
from collections.abc import Callable, Sequence

import numpy as np

import keras
import tensorflow as tf
from keras import ops

from cnnlab_tf.distributed import loss_scale, on_every_replica, replica_rows, scope
from cnnlab_tf.optimizer import set_learning_rate
from cnnlab_tf.precision import loss_scaler
from shared.data.augment import pad
from shared.training.config import TrainConfig
from shared.data.dataset import Dataset
from shared.training.loop import Batch, Read, Steps


def _cross_entropy(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """Mean cross-entropy over the batch, like ``F.cross_entropy``, in the logits' own dtype (a
    ``keras.losses.Loss`` object would cast to the global floatx)."""
    return ops.mean(keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True))


def train_step(model: keras.Model, optimizer: keras.optimizers.Optimizer, images: tf.Tensor, labels: tf.Tensor,
               scaler: keras.optimizers.LossScaleOptimizer | None = None,
               loss_scale: float = 1.0) -> tuple[tf.Tensor, tf.Tensor]:
    """One optimizer step on a batch of NHWC images in the model's variable dtype; returns the batch's mean loss and
    correct count as 0-d tensors, left on the device. ``scaler`` scales the loss (16-mixed); ``loss_scale``
    multiplies the loss that is differentiated (a replica's share of a distributed batch)."""
    # Forward, convolutions and matmuls in the layers' compute dtype; the loss in the variable dtype
    with tf.GradientTape() as tape:
        logits = model(images, training=True)
        loss = _cross_entropy(labels, ops.cast(logits, images.dtype))
        differentiated = loss * loss_scale  # times 1.0 alone: exact
        scaled = differentiated if scaler is None else scaler.scale_loss(differentiated)
    # Backward and update; a scaler skips the update when the scaled gradients overflowed
    gradients = tape.gradient(scaled, model.trainable_variables)
    (optimizer if scaler is None else scaler).apply(gradients, model.trainable_variables)
    # Statistics of the batch, on the logits before the update
    correct = tf.reduce_sum(tf.cast(tf.argmax(logits, axis=1) == labels, tf.int32))
    return loss, correct


def read_batches(values: tuple[tf.Tensor, tf.Tensor]) -> tuple[np.ndarray, np.ndarray]:
    """Losses and correct counts of several batches in one device-to-host transfer each."""
    losses, corrects = values
    return losses.numpy(), corrects.numpy()


def gather_batch(images: tf.Tensor, labels: tf.Tensor, index: tf.Tensor, rows: tf.Tensor | None = None,
                 cols: tf.Tensor | None = None) -> tuple[tf.Tensor, tf.Tensor]:
    """The batch's uint8 images and labels, picked on the device. With crops, ``images`` is the padded training set
    and each image is read through its crop's ``rows`` and ``cols`` (``shared.data.augment.apply``, as gathers)."""
    picked = tf.gather(images, index)
    if rows is not None:
        picked = tf.gather(picked, rows, axis=1, batch_dims=1)  # (B, H, W + 2p, C)
        picked = tf.gather(picked, cols, axis=2, batch_dims=1)  # (B, H, W, C)
    return picked, tf.gather(labels, index)


def _replica_step(model: keras.Model, optimizer: keras.optimizers.Optimizer,
                  scaler: keras.optimizers.LossScaleOptimizer | None, images: tf.Tensor, labels: tf.Tensor,
                  index: tf.Tensor, *crops: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """``train_step`` on this replica's rows of the global batch (``shared.training.distributed.World.share``'s rows),
    its loss scaled by their share, so that the replicas' summed gradients are the whole batch's. Returns the loss
    times the share, whose sum over the replicas is the batch's mean loss, and the correct count. One device is one
    replica with every row, and a share of exactly 1."""
    batch = tf.shape(index)[0]
    rows = replica_rows(batch)
    batch_images, batch_labels = gather_batch(images, labels, index[rows], *(part[rows] for part in crops))
    dtype = model.inputs[0].dtype
    share = loss_scale(tf.cast(tf.shape(batch_labels)[0], dtype), tf.cast(batch, dtype))
    loss, correct = train_step(model, optimizer, tf.cast(batch_images, dtype), batch_labels, scaler, share)
    return loss * share, correct


def _gathered_step(strategy: tf.distribute.Strategy, model: keras.Model, optimizer: keras.optimizers.Optimizer,
                   scaler: keras.optimizers.LossScaleOptimizer | None, images, labels, lr: tf.Tensor,
                   index: tf.Tensor, *crops: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """One step of every replica on the batch gathered inside the graph, at the schedule's rate (a few eager ops
    per step less, which small models notice); the loss and correct count summed over the replicas."""
    set_learning_rate(optimizer, lr)
    replica_step = functools.partial(_replica_step, model, optimizer, scaler)
    loss, correct = strategy.run(replica_step, args=(images, labels, index, *crops))
    return strategy.reduce("SUM", loss, axis=None), strategy.reduce("SUM", correct, axis=None)


def _gathered_steps(strategy: tf.distribute.Strategy, model: keras.Model, optimizer: keras.optimizers.Optimizer,
                    scaler: keras.optimizers.LossScaleOptimizer | None, images, labels, lrs: tf.Tensor,
                    indices: tf.Tensor, *crops: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """``_gathered_step`` on each of a group of batches of one size, in order, in one graph call: their losses
    (float64) and correct counts. A call into a traced graph costs a CIFAR CNN's step more than a tenth of its time
    here (2.05 against 1.8 ms a step at batch 32, one call per step or 16 per call); the weights are the same to
    the bit, in float32 and float64, as one call per step."""
    count = tf.shape(indices)[0]
    losses, corrects = tf.TensorArray(tf.float64, size=count), tf.TensorArray(tf.int32, size=count)
    for number in tf.range(count):
        loss, correct = _gathered_step(strategy, model, optimizer, scaler, images, labels, lrs[number],
                                       indices[number], *(part[number] for part in crops))
        losses = losses.write(number, tf.cast(loss, tf.float64))
        corrects = corrects.write(number, correct)
    return losses.stack(), corrects.stack()


def _batch_signature(crops: bool, image_size: int) -> list[tf.TensorSpec]:
    """What the compiled steps take for a group of batches: each step's learning rate, each batch's rows of the
    training set, and with crops each image's rows and columns to read. The group's length and the batch size are
    left free, so the steps are traced once per run: traced per batch size, the smaller last batch of an epoch cost a
    second trace (0.3-0.4 s for a CIFAR CNN here, more than its whole epoch)."""
    signature = [tf.TensorSpec((None,), tf.float64), tf.TensorSpec((None, None), tf.int64)]
    if crops:
        signature += [tf.TensorSpec((None, None, image_size), tf.int64)] * 2
    return signature


def _stacked(batches: Sequence[Batch]) -> list[tf.Tensor]:
    """The compiled steps' arguments for batches of one size (``_batch_signature``)."""
    arguments = [tf.constant([batch.lr for batch in batches], tf.float64),
                 tf.constant(np.stack([batch.indices for batch in batches]))]
    if batches[0].crops is not None:
        arguments += [tf.constant(np.stack([getattr(batch.crops, part) for batch in batches]))
                      for part in ("rows", "cols")]
    return arguments


def _compiled(step: Callable, enabled: bool, signature: list[tf.TensorSpec], replicas: int) -> Callable:
    """The train steps as a TensorFlow graph; with ``enabled``, XLA-compiled (``jit_compile``). Compiled per fit, not
    once per process: a compiled step may only create variables on its first trace."""
    if enabled and replicas > 1:
        # Measured on two CPU logical devices: the XLA cluster runs on the first device and cannot read the other
        # replicas' variables ("Trying to access resource conv1/kernel/replica_1 located in device CPU:1 from
        # device CPU:0"), whether the whole step or each replica's part is compiled. As torch.compile does where
        # Inductor cannot build, the run goes on uncompiled.
        print("warning: --compile: XLA cannot compile a step mirrored over several replicas here; training "
              "without it", file=sys.stderr)
        enabled = False
    return tf.function(step, input_signature=signature, jit_compile=enabled)


def train_steps(model: keras.Model, optimizer: keras.optimizers.Optimizer, train: Dataset,
                config: TrainConfig) -> tuple[Steps, Read]:
    """``shared.training.loop``'s ``steps`` and ``read`` over ``train``: ``shared.training.backend.Trainer.fit``
    runs the epochs."""
    # The uint8 training set lives on each replica's device once (padded for the crops); each step gathers its
    # batch there.
    strategy = model.distribute_strategy  # the run's, which the model was built under (one device: the default)
    images = on_every_replica(pad(train.images, config.augmentation.padding), strategy)
    labels = on_every_replica(train.labels, strategy)
    # A new scaler per fit starts from its initial scale: a resumed 16-mixed run may skip a step or two more.
    with scope(strategy):
        scaler = loss_scaler(config.precision, optimizer)
    # The graph closes over the model and the optimizer: only tensors cross the call, which is cheaper to dispatch.
    training_steps = _compiled(lambda *group: _gathered_steps(strategy, model, optimizer, scaler, images, labels,
                                                              *group), config.compile,
                               _batch_signature(config.augmentation.active, train.image_size),
                               strategy.num_replicas_in_sync)

    def steps(batches: Sequence[Batch]) -> tuple[tf.Tensor, tf.Tensor]:
        # One call per run of equal-sized batches: the epoch's smaller last batch goes in a call of its own
        results = [training_steps(*_stacked(list(same_size)))
                   for _, same_size in itertools.groupby(batches, key=lambda batch: len(batch.indices))]
        if len(results) == 1:
            return results[0]
        return tuple(tf.concat(parts, axis=0) for parts in zip(*results))

    return steps, read_batches
