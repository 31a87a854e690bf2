"""Keras weights <-> the canonical layout. Every permutation is a call into ``shared.model.layout``."""

from __future__ import annotations

import warnings
import zipfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from collections.abc import Callable

import numpy as np

import keras
from shared.formats.readable import reading
from shared.util.atomic import atomic_path
from shared.model.layout import (conv_kernel_from_hwio, conv_kernel_to_hwio, dense_from_keras, dense_to_keras,
                                 depthwise_kernel_from_keras, depthwise_kernel_to_keras)
from shared.model.rules import layer_rule
from shared.model.shapes import flatten_input_shapes
from shared.model.specs import (AvgPool2d, BatchNorm2d, Conv2d, Flatten, GlobalAvgPool2d, Layer, Linear, MaxPool2d,
                                ModelSpec, Normalize, ReLU, ReLU6, leaf_layers)

# Keras keeps a BatchNormalization layer's weights as [gamma, beta, moving_mean, moving_variance].
_BATCHNORM_KINDS = ("weight", "bias", "running_mean", "running_var")


def _same(array: np.ndarray) -> np.ndarray:
    return array


@dataclass(frozen=True)
class CanonicalVariable:
    """A Keras variable under its canonical name, with the conversions of a value of its shape (a weight, or an
    optimizer moment of that weight) to and from the canonical layout."""

    variable: keras.Variable
    to_canonical: Callable[[np.ndarray], np.ndarray]
    from_canonical: Callable[[np.ndarray], np.ndarray]


# kind -> (the Keras variable, to canonical, from canonical)
Kinds = dict[str, tuple[keras.Variable, Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]]


@layer_rule("Keras variables", leaves_only=True)
def layer_variables(layer: Layer, weights: list, flattened_chw: tuple[int, int, int] | None) -> Kinds:
    """The canonical kinds (``weight``, ``bias``...) of one elementary layer, mapped to its Keras ``weights``.
    ``flattened_chw``: the (C, H, W) map a Flatten fed into this layer, if one did."""


@layer_variables.register(Normalize)
@layer_variables.register(ReLU)
@layer_variables.register(ReLU6)
@layer_variables.register(MaxPool2d)
@layer_variables.register(AvgPool2d)
@layer_variables.register(GlobalAvgPool2d)
@layer_variables.register(Flatten)
def _(layer, weights: list, flattened_chw) -> Kinds:
    return {}


@layer_variables.register
def _(layer: BatchNorm2d, weights: list, flattened_chw) -> Kinds:
    return dict(zip(_BATCHNORM_KINDS, [(weight, _same, _same) for weight in weights]))


def _with_bias(kinds: Kinds, layer: Conv2d | Linear, weights: list) -> Kinds:
    return {**kinds, "bias": (weights[1], _same, _same)} if layer.bias else kinds


@layer_variables.register
def _(layer: Conv2d, weights: list, flattened_chw) -> Kinds:
    if layer.depthwise:
        return _with_bias({"weight": (weights[0], depthwise_kernel_from_keras, depthwise_kernel_to_keras)}, layer,
                          weights)
    return _with_bias({"weight": (weights[0], conv_kernel_from_hwio, conv_kernel_to_hwio)}, layer, weights)


@layer_variables.register
def _(layer: Linear, weights: list, flattened_chw) -> Kinds:
    return _with_bias({"weight": (weights[0], partial(dense_from_keras, flattened_chw=flattened_chw),
                                  partial(dense_to_keras, flattened_chw=flattened_chw))}, layer, weights)


def canonical_variables(model: keras.Model, spec: ModelSpec) -> dict[str, CanonicalVariable]:
    """Canonical parameter name -> the Keras variable that holds it, for every parameter of the spec."""
    flattened = flatten_input_shapes(spec)
    variables = {}
    for name, layer in leaf_layers(spec):
        kinds = layer_variables(layer, model.get_layer(name).weights, flattened.get(name))
        variables.update({f"{name}.{kind}": CanonicalVariable(*entry) for kind, entry in kinds.items()})
    return variables


def set_weights(model: keras.Model, spec: ModelSpec, weights: dict[str, np.ndarray]) -> None:
    for name, entry in canonical_variables(model, spec).items():
        value = entry.from_canonical(np.asarray(weights[name]))
        assert tuple(entry.variable.shape) == value.shape, f"{name}: model {entry.variable.shape}, got {value.shape}"
        entry.variable.assign(value.astype(entry.variable.dtype))


def get_weights(model: keras.Model, spec: ModelSpec) -> dict[str, np.ndarray]:
    return {name: entry.to_canonical(np.asarray(entry.variable.numpy()))
            for name, entry in canonical_variables(model, spec).items()}


def save_checkpoint(model: keras.Model, path: Path) -> None:
    """The native checkpoint: a ``.keras`` archive, loadable with ``keras.models.load_model`` once
    ``cnnlab_tf.model`` is imported (it registers the custom layers)."""
    with atomic_path(path) as part, warnings.catch_warnings():
        # Keras converts each tf.Variable with np.array(x), whose __array__ takes no copy keyword under NumPy 2: one
        # DeprecationWarning per variable per checkpoint (keras-team/keras#21288 would convert natively).
        warnings.filterwarnings("ignore", "__array__ implementation doesn't accept a copy keyword",
                                DeprecationWarning)
        model.save(part)


def load_checkpoint(model: keras.Model, path: Path) -> None:
    """The native checkpoint's weights back into a model built from the same spec."""
    with reading(path, "a Keras checkpoint (a .keras archive saved by cnnlab_tf)"):
        # Keras answers a file that is not a zip with "File not found", which sends a user looking for the wrong fault
        if not zipfile.is_zipfile(path):
            raise ValueError("not a zip archive, which every .keras file is")
        model.set_weights(keras.models.load_model(path, compile=False).get_weights())
