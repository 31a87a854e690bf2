"""Keras 3 models built from ``shared.model.specs``. Layers carry the spec's names (``layer1.0.conv1``), so weights
map to the canonical names one to one. The model computes in NHWC; ``shared.model.layout`` converts weights and
activations."""

from __future__ import annotations

import weakref
from typing import cast

import numpy as np

import keras
import tensorflow as tf
from keras import ops

from cnnlab_tf.distributed import replica_rows, scope
from cnnlab_tf.precision import dtype_policy, variable_dtype
from shared.model.layout import activation_to_canonical
from shared.training.precision import DEFAULT_PRECISION
from shared.model.shapes import output_shapes, parameters
from shared.model.rules import layer_rule
from shared.model.specs import (AvgPool2d, BatchNorm2d, Conv2d, Flatten, GlobalAvgPool2d, Layer, Linear, MaxPool2d,
                                ModelSpec, NamedLayers, Normalize, ReLU, ReLU6, Residual, Sequential)


@keras.saving.register_keras_serializable(package="cnnlab")
class NormalizeNHWC(keras.layers.Layer):
    """(x / 255 - mean) / std with Python-constant mean and std. ``keras.layers.Normalization`` would export its
    statistics as extra ONNX graph inputs, so the image could not be the only input."""

    def __init__(self, mean, std, **kwargs):
        super().__init__(**kwargs)
        self.mean, self.std = tuple(float(v) for v in mean), tuple(float(v) for v in std)

    def call(self, images):
        mean = ops.convert_to_tensor(self.mean, dtype=images.dtype)  # the model's float type, as in PyTorch
        std = ops.convert_to_tensor(self.std, dtype=images.dtype)
        return (images / 255.0 - mean) / std

    def get_config(self):
        return {**super().get_config(), "mean": self.mean, "std": self.std}


@keras.saving.register_keras_serializable(package="cnnlab")
class ConstantPadding2D(keras.layers.Layer):
    """Symmetric H/W padding with a constant: -inf before a max-pool, as PyTorch pads (zeros would win the max
    against negative inputs)."""

    def __init__(self, padding: int, value: float, **kwargs):
        super().__init__(**kwargs)
        self.padding, self.value = int(padding), float(value)

    def call(self, x):
        p = self.padding
        return ops.pad(x, [[0, 0], [p, p], [p, p], [0, 0]], constant_values=self.value)

    def get_config(self):
        return {**super().get_config(), "padding": self.padding, "value": self.value}


@keras.saving.register_keras_serializable(package="cnnlab")
class TorchBatchNormalization(keras.layers.BatchNormalization):
    """BatchNormalization whose training step updates the moving variance as PyTorch does.

    Both frameworks normalise a training batch with its biased variance, but PyTorch folds the *unbiased* one
    (times n / (n - 1)) into ``running_var`` and Keras the biased one, so a trained ResNet-18's running variances
    differed by 0.14 after three steps at batch 8 and its inference outputs would follow. Inference is unchanged."""

    def call(self, inputs, training=None, mask=None):
        # Batch renormalisation came to Keras's layer in 3.14; 3.13's (Colab's) has no `renorm` attribute
        if not (training and self.trainable) or mask is not None or getattr(self, "renorm", False):
            return super().call(inputs, training=training, mask=mask)
        # Statistics in float32 at least, as Keras's own layer and PyTorch's batch_norm compute them for 16-bit input
        inputs = ops.cast(inputs, keras.backend.result_type(self.compute_dtype, "float32"))
        mean, variance, count = self._batch_moments(inputs)
        unbiased = variance * count / ops.maximum(count - 1, 1)
        momentum = ops.convert_to_tensor(self.momentum, variance.dtype)
        self.moving_mean.assign(ops.cast(self.moving_mean, mean.dtype) * momentum + mean * (1 - momentum))
        self.moving_variance.assign(ops.cast(self.moving_variance, variance.dtype) * momentum
                                    + unbiased * (1 - momentum))
        outputs = ops.batch_normalization(inputs, mean, variance, axis=self.axis,
                                          offset=ops.cast(self.beta, inputs.dtype),
                                          scale=ops.cast(self.gamma, inputs.dtype), epsilon=self.epsilon)
        return ops.cast(outputs, self.compute_dtype)

    def _batch_moments(self, inputs):
        """Mean, biased variance and count of the values per channel, over the whole global batch: with several
        replicas (``cnnlab_tf.distributed``) the sums are all-reduced, as torch's SyncBatchNorm does, so each replica
        normalises with the statistics one device would compute. Two passes (the mean, then the squared deviations
        from it), not Keras's ``synchronized=True``, which takes the variance as E[x^2] - E[x]^2 and folds the
        biased variance into the moving one."""
        axes = self._reduction_axes
        count = ops.cast(ops.size(inputs) // ops.shape(inputs)[self.axis], inputs.dtype)
        context = tf.distribute.get_replica_context()
        if context is None or context.num_replicas_in_sync == 1:
            mean, variance = ops.moments(inputs, axes)
            return mean, variance, count
        total, count = context.all_reduce("SUM", [ops.sum(inputs, axes), count])
        mean = total / count
        squares = context.all_reduce("SUM", ops.sum(ops.square(inputs - mean), axes))
        return mean, squares / count, count


def conv_padding(layer: Conv2d, name: str) -> tuple[list[keras.layers.Layer], str]:
    """PyTorch's symmetric padding as Keras layers: explicit zero padding, then a "valid" convolution. Keras's
    "same" pads more at the bottom and right when the stride is above 1, which changes the numbers."""
    if layer.padding == 0:
        return [], "valid"
    return [keras.layers.ZeroPadding2D(layer.padding, name=f"{name}.pad")], "valid"


def batchnorm_arguments(layer: BatchNorm2d) -> dict:
    """PyTorch's momentum weights the new batch statistic; Keras's weights the running value."""
    return {"axis": -1, "epsilon": layer.eps, "momentum": 1.0 - layer.momentum}


@layer_rule("Keras layer")
def _apply(layer: Layer, name: str, x):
    """Apply one spec layer, named ``name``, to the Keras tensor ``x``."""


@_apply.register
def _(layer: Normalize, name: str, x):  # in the variable dtype, as PyTorch's autocast leaves elementwise ops
    return NormalizeNHWC(layer.mean, layer.std, name=name, dtype=x.dtype)(x)


@_apply.register
def _(layer: Conv2d, name: str, x):
    padding_layers, padding = conv_padding(layer, name)
    for padding_layer in padding_layers:
        x = padding_layer(x)
    if layer.depthwise:
        return keras.layers.DepthwiseConv2D(layer.kernel, layer.stride, padding=padding, use_bias=layer.bias,
                                            name=name)(x)
    return keras.layers.Conv2D(layer.out_channels, layer.kernel, layer.stride, padding=padding,
                               use_bias=layer.bias, name=name)(x)


@_apply.register
def _(layer: BatchNorm2d, name: str, x):
    return TorchBatchNormalization(**batchnorm_arguments(layer), name=name)(x)


@_apply.register
def _(layer: ReLU, name: str, x):
    return keras.layers.ReLU(name=name)(x)


@_apply.register
def _(layer: ReLU6, name: str, x):
    return keras.layers.ReLU(max_value=6.0, name=name)(x)


@_apply.register
def _(layer: MaxPool2d, name: str, x):
    if layer.padding:
        x = ConstantPadding2D(layer.padding, float("-inf"), name=f"{name}.pad")(x)
    return keras.layers.MaxPooling2D(layer.kernel, layer.stride, padding="valid", name=name)(x)


@_apply.register
def _(layer: AvgPool2d, name: str, x):
    return keras.layers.AveragePooling2D(layer.kernel, layer.stride, padding="valid", name=name)(x)


@_apply.register
def _(layer: GlobalAvgPool2d, name: str, x):
    return keras.layers.GlobalAveragePooling2D(keepdims=True, name=name)(x)


@_apply.register
def _(layer: Flatten, name: str, x):
    return keras.layers.Flatten(name=name)(x)  # (H, W, C) order; shared.model.layout permutes the next Linear


@_apply.register
def _(layer: Linear, name: str, x):
    return keras.layers.Dense(layer.out_features, use_bias=layer.bias, name=name)(x)


def _apply_path(layers: NamedLayers, prefix: str, x):
    for name, layer in layers:
        x = _apply(layer, f"{prefix}.{name}", x)
    return x


@_apply.register
def _(layer: Sequential, name: str, x):
    return _apply_path(layer.layers, name, x)


@_apply.register
def _(layer: Residual, name: str, x):
    out = keras.layers.Add(name=f"{name}.add")([_apply_path(layer.main, name, x),
                                                _apply_path(layer.shortcut, name, x)])
    return _apply_path(layer.after, name, out)


def output_layer_name(name: str, layer: Layer) -> str:
    """The Keras layer whose output is the spec layer ``name``'s output."""
    if isinstance(layer, Sequential):
        last, last_layer = layer.layers[-1]
        return output_layer_name(f"{name}.{last}", last_layer)
    if isinstance(layer, Residual):
        if layer.after:
            last, last_layer = layer.after[-1]
            return output_layer_name(f"{name}.{last}", last_layer)
        return f"{name}.add"
    return name


def build_model(spec: ModelSpec, precision: str = DEFAULT_PRECISION,
                placement: tf.distribute.Strategy | None = None) -> keras.Model:
    """The functional model, its layers under the precision's dtype policy. Its weights are Keras's initialisers
    until ``set_weights`` loads the shared ones. ``placement``: the tf.distribute strategy the backend selected;
    under a mirrored one every variable is mirrored on each replica, and the model carries it
    (``model.distribute_strategy``)."""
    with scope(placement):
        return unmirrored_model(spec, precision)


def unmirrored_model(spec: ModelSpec, precision: str = DEFAULT_PRECISION) -> keras.Model:
    """``build_model`` outside any tf.distribute strategy: a model only this process uses (the export's float32
    copy, which rank 0 alone builds; with several workers, creating mirrored variables is a collective that every
    worker would have to join)."""
    with dtype_policy(precision):
        images = keras.Input((spec.image_size, spec.image_size, 3), dtype=variable_dtype(precision), name="images")
        x = images
        for name, layer in spec.layers:
            x = _apply(layer, name, x)
        return keras.Model(images, x, name=spec.name)


def freeze(model: keras.Model, spec: ModelSpec, trainable_prefixes: tuple[str, ...]) -> list[str]:
    """Only parameters whose canonical names start with one of ``trainable_prefixes`` train; returns their names.

    Keras freezes whole layers: ``trainable=False`` also runs a BatchNormalization layer in inference mode, so its
    moving statistics stay fixed, as ``cnnlab_torch.model.freeze`` keeps a frozen BatchNorm in eval mode."""
    trainable = []
    for param in parameters(spec):
        layer_name = param.name.rsplit(".", 1)[0]
        layer = model.get_layer(layer_name)
        layer.trainable = f"{layer_name}.".startswith(trainable_prefixes)
        if layer.trainable and param.trainable:
            trainable.append(param.name)
    return trainable


def count_trainable(model: keras.Model) -> int:
    return int(sum(np.prod(weight.shape) for weight in model.trainable_weights))


def trainable_params_by_layer(model: keras.Model, spec: ModelSpec) -> dict[str, int]:
    counts = {}
    for name, _ in spec.layers:
        owned = [layer for layer in model.layers if layer.name == name or layer.name.startswith(name + ".")]
        counts[name] = int(sum(np.prod(weight.shape) for layer in owned for weight in layer.trainable_weights))
    return counts


def layer_outputs(model: keras.Model, spec: ModelSpec, images: np.ndarray) -> dict[str, np.ndarray]:
    """Per-layer outputs in the canonical (NCHW) layout, in inference mode."""
    # The single input tensor, not the one-element list: called with a bare array, a model built on a list warns that
    # the structures differ.
    taps = keras.Model(model.inputs[0], [model.get_layer(output_layer_name(name, layer)).output
                                         for name, layer in spec.layers])
    values = taps(images, training=False)
    canonical_shapes = output_shapes(spec)
    outputs = {}
    for index, ((name, layer), value) in enumerate(zip(spec.layers, values)):
        # what a Flatten reads is a (C, H, W) map (shared.model.shapes.flatten_input_shapes)
        flattened_chw = cast(tuple[int, int, int], canonical_shapes[index - 1][1]) if isinstance(layer, Flatten) \
            else None
        outputs[name] = activation_to_canonical(np.asarray(value), flattened_chw)
    return outputs


def predict_logits(model: keras.Model, images: np.ndarray, batch_size: int) -> np.ndarray:
    """float32 logits for uint8 or float NHWC images, in inference mode in the model's precision, batch by batch."""
    dtype = model.inputs[0].dtype
    predict = _predict_function(model)
    chunks = [np.asarray(predict(images[start:start + batch_size].astype(dtype)), np.float32)
              for start in range(0, len(images), batch_size)]
    return np.concatenate(chunks)


_predict_functions: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _predict_function(model: keras.Model):
    """The model's inference as a graph, traced once per model for every batch size. Calling the model eagerly was
    measured 2.8-3.5x slower (ResNet-18 at 64 px: 187 against 66 ms per batch of 32); Keras's ``predict_on_batch``
    traces once per batch size (twice a validation pass: the last batch is smaller), and over several replicas
    hands every replica the whole batch, returning each row once per replica.

    Over several replicas each computes the logits of its rows of a batch, gathered back in order. With several
    workers the gather is a collective that every worker must join, but rank 0 alone runs the reports' and the
    export's inference: there each worker computes on its own first device, from its copy of the variables, which
    every worker holds equal."""
    if model not in _predict_functions:
        strategy = model.distribute_strategy

        def replica_logits(batch):  # float32, as returned: the gather has no bfloat16 kernel
            return ops.cast(model(batch[replica_rows(tf.shape(batch)[0])], training=False), "float32")

        def logits(batch):
            if strategy.num_replicas_in_sync == 1 or isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
                return ops.cast(model(batch, training=False), "float32")
            # A batch with fewer rows than replicas (an epoch's last) would leave a replica none, and a convolution
            # of zero rows fails in oneDNN ("input depth must be evenly divisible by filter depth"): its last row
            # is repeated until every replica has one, and the repeats' logits are dropped.
            rows = tf.shape(batch)[0]
            missing = tf.maximum(strategy.num_replicas_in_sync - rows, 0)
            padded = tf.concat([batch, tf.repeat(batch[-1:], missing, axis=0)], axis=0)
            return strategy.gather(strategy.run(replica_logits, args=(padded,)), axis=0)[:rows]

        signature = [tf.TensorSpec((None, *model.inputs[0].shape[1:]), model.inputs[0].dtype)]
        _predict_functions[model] = tf.function(logits, input_signature=signature)
    return _predict_functions[model]
