"""Initial weights drawn once, with NumPy, in the canonical layout.

Both backends load these instead of running their own initialisers (PyTorch's kaiming-uniform and Keras's
glorot-uniform differ), so two models built from the same spec and seed hold identical weights. The rules copy
PyTorch's defaults so that a spec trains the way the seed labs saw it train.
"""

from __future__ import annotations

import math

import numpy as np

from shared.model.shapes import ParamInfo, parameters
from shared.model.specs import BatchNorm2d, Conv2d, Linear, ModelSpec


def _fan_in(param: ParamInfo) -> int:
    layer = param.layer
    if isinstance(layer, Conv2d):
        return layer.in_channels * layer.kernel * layer.kernel
    assert isinstance(layer, Linear), f"no fan-in for {param.name}"
    return layer.in_features


def _draw(param: ParamInfo, rng: np.random.Generator) -> np.ndarray:
    layer = param.layer
    if isinstance(layer, BatchNorm2d):
        # torchvision: gamma 1, beta 0; a fresh layer has mean 0 and variance 1.
        return np.full(param.shape, 1.0 if param.kind in ("weight", "running_var") else 0.0, dtype=np.float32)
    if isinstance(layer, Conv2d) and layer.init == "kaiming_normal_fan_out" and param.kind == "weight":
        # torchvision ResNet: kaiming_normal_(mode="fan_out", nonlinearity="relu").
        fan_out = layer.out_channels * layer.kernel * layer.kernel
        return rng.normal(0.0, math.sqrt(2.0 / fan_out), param.shape).astype(np.float32)
    # PyTorch's nn.Conv2d / nn.Linear default: kaiming_uniform_(a=sqrt(5)) for the weight, which is
    # U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the same bound for the bias.
    bound = 1.0 / math.sqrt(_fan_in(param))
    return rng.uniform(-bound, bound, param.shape).astype(np.float32)


def initial_weights(spec: ModelSpec, seed: int) -> dict[str, np.ndarray]:
    """Canonical name -> float32 array for every parameter and BatchNorm statistic of ``spec``."""
    rng = np.random.default_rng(seed)
    return {param.name: _draw(param, rng) for param in parameters(spec)}
