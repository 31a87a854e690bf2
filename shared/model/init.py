"""Initial weights drawn once, with NumPy, in the canonical layout.

Both backends load these instead of running their own initialisers (PyTorch's kaiming-uniform and Keras's
glorot-uniform differ), so two models built from the same spec and seed hold identical weights. The rules copy
PyTorch's defaults so that a spec trains the way the seed labs saw it train.
"""

from __future__ import annotations

import math

import numpy as np

from shared.model.rules import layer_rule
from shared.model.shapes import ParamInfo, parameters
from shared.model.specs import BatchNorm2d, Conv2d, Layer, Linear, ModelSpec


def _uniform_fan_in(param: ParamInfo, fan_in: int, rng: np.random.Generator) -> np.ndarray:
    """PyTorch's nn.Conv2d / nn.Linear default: kaiming_uniform_(a=sqrt(5)) for the weight, which is
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the same bound for the bias."""
    bound = 1.0 / math.sqrt(fan_in)
    return rng.uniform(-bound, bound, param.shape).astype(np.float32)


def _constant(param: ParamInfo, value: float) -> np.ndarray:
    return np.full(param.shape, value, dtype=np.float32)


@layer_rule("init", leaves_only=True)
def draw(layer: Layer, param: ParamInfo, rng: np.random.Generator) -> np.ndarray:
    """The initial value of ``param``, one of ``layer``'s parameters, drawn from ``rng``."""


@draw.register
def _(layer: BatchNorm2d, param: ParamInfo, rng: np.random.Generator) -> np.ndarray:
    # torchvision: gamma 1, beta 0; a fresh layer has mean 0 and variance 1.
    return _constant(param, 1.0 if param.kind in ("weight", "running_var") else 0.0)


@draw.register
def _(layer: Conv2d, param: ParamInfo, rng: np.random.Generator) -> np.ndarray:
    receptive_field = layer.kernel * layer.kernel
    if layer.init == "kaiming_normal_fan_out":  # torchvision's ResNet and MobileNetV2
        if param.kind == "bias":
            return _constant(param, 0.0)
        # kaiming_normal_(mode="fan_out", nonlinearity="relu"); torch's fan-out is the weight's first dimension
        # times the receptive field, also for a depthwise convolution
        fan_out = layer.out_channels * receptive_field
        return rng.normal(0.0, math.sqrt(2.0 / fan_out), param.shape).astype(np.float32)
    return _uniform_fan_in(param, layer.in_channels // layer.groups * receptive_field, rng)


@draw.register
def _(layer: Linear, param: ParamInfo, rng: np.random.Generator) -> np.ndarray:
    if layer.init == "normal_0.01":  # torchvision's MobileNetV2 classifier
        if param.kind == "bias":
            return _constant(param, 0.0)
        return rng.normal(0.0, 0.01, param.shape).astype(np.float32)
    return _uniform_fan_in(param, layer.in_features, rng)


def initial_weights(spec: ModelSpec, seed: int) -> dict[str, np.ndarray]:
    """Canonical name -> float32 array for every parameter and BatchNorm statistic of ``spec``."""
    rng = np.random.default_rng(seed)
    return {param.name: draw(param.layer, param, rng) for param in parameters(spec)}
