"""Keras weights <-> the canonical layout. Every permutation is a call into ``shared.layout``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import keras
from shared.atomic import atomic_path
from shared.layout import conv_kernel_from_hwio, conv_kernel_to_hwio, dense_from_keras, dense_to_keras
from shared.shapes import flatten_input_shapes
from shared.specs import BatchNorm2d, Conv2d, Linear, ModelSpec, leaf_layers

# Keras keeps a BatchNormalization layer's weights as [gamma, beta, moving_mean, moving_variance].
_BATCHNORM_KINDS = ("weight", "bias", "running_mean", "running_var")


def _parameterised_layers(spec: ModelSpec):
    """(leaf name, layer, (C, H, W) flattened into it or None) for every layer that holds weights."""
    flattened = flatten_input_shapes(spec)
    for name, layer in leaf_layers(spec):
        if isinstance(layer, (Conv2d, Linear, BatchNorm2d)):
            yield name, layer, flattened.get(name)


def set_weights(model: keras.Model, spec: ModelSpec, weights: dict[str, np.ndarray]) -> None:
    for name, layer, flattened_chw in _parameterised_layers(spec):
        if isinstance(layer, Conv2d):
            values = [conv_kernel_to_hwio(weights[f"{name}.weight"])]
        elif isinstance(layer, Linear):
            values = [dense_to_keras(weights[f"{name}.weight"], flattened_chw)]
        else:
            values = [weights[f"{name}.{kind}"] for kind in _BATCHNORM_KINDS]
        if not isinstance(layer, BatchNorm2d) and layer.bias:
            values.append(weights[f"{name}.bias"])
        model.get_layer(name).set_weights(values)


def get_weights(model: keras.Model, spec: ModelSpec) -> dict[str, np.ndarray]:
    weights = {}
    for name, layer, flattened_chw in _parameterised_layers(spec):
        values = [np.asarray(value) for value in model.get_layer(name).get_weights()]
        if isinstance(layer, BatchNorm2d):
            weights.update({f"{name}.{kind}": value for kind, value in zip(_BATCHNORM_KINDS, values)})
            continue
        if isinstance(layer, Conv2d):
            weights[f"{name}.weight"] = conv_kernel_from_hwio(values[0])
        else:
            weights[f"{name}.weight"] = dense_from_keras(values[0], flattened_chw)
        if layer.bias:
            weights[f"{name}.bias"] = values[1]
    return weights


def save_checkpoint(model: keras.Model, path: Path) -> None:
    """The native checkpoint: a ``.keras`` archive, loadable with ``keras.models.load_model`` once
    ``cnnlab_tf.model`` is imported (it registers the custom layers)."""
    with atomic_path(path) as part:
        model.save(part)


def load_checkpoint(model: keras.Model, path: Path) -> None:
    """The native checkpoint's weights back into a model built from the same spec."""
    model.set_weights(keras.models.load_model(path, compile=False).get_weights())
