"""Floating-point work of a spec's forward pass and training step, counted from the spec alone.

Only convolutions and Linear layers are counted, as multiply-adds times two: a convolution costs
2 * Cin/groups * Cout * k * k * Hout * Wout per image (a depthwise convolution reads one input channel per output),
a Linear 2 * in * out.
BatchNorm, ReLU, pooling, the residual additions and the input normalisation are left out, as in the published
figures for torchvision's models (ResNet-18 at 224 px: 1.814 G multiply-adds); they are a few operations per
activation against hundreds per output of a convolution.

A training step is counted as three forward passes: the backward pass computes the gradient with respect to each
layer's input and with respect to its weights, each as costly as the forward product.
"""

from __future__ import annotations

from shared.model.rules import layer_rule
from shared.model.shapes import Shape, input_shape, layer_output_shape, walk
from shared.model.specs import (AvgPool2d, BatchNorm2d, Conv2d, Flatten, GlobalAvgPool2d, Layer, Linear, MaxPool2d,
                                ModelSpec, Normalize, ReLU, ReLU6)

TRAIN_STEP_FORWARDS = 3  # forward + gradient w.r.t. inputs + gradient w.r.t. weights


@layer_rule("FLOPs", leaves_only=True)
def leaf_flops(layer: Layer, shape: Shape) -> int:
    """Forward FLOPs of one elementary layer for one image whose input has ``shape`` (canonical, no batch)."""


@leaf_flops.register
def _(layer: Conv2d, shape: Shape) -> int:
    _, height, width = layer_output_shape(layer, shape)
    inputs_per_output = layer.in_channels // layer.groups * layer.kernel * layer.kernel
    return 2 * inputs_per_output * layer.out_channels * height * width


@leaf_flops.register
def _(layer: Linear, shape: Shape) -> int:
    return 2 * layer.in_features * layer.out_features


@leaf_flops.register(Normalize)
@leaf_flops.register(BatchNorm2d)
@leaf_flops.register(ReLU)
@leaf_flops.register(ReLU6)
@leaf_flops.register(MaxPool2d)
@leaf_flops.register(AvgPool2d)
@leaf_flops.register(GlobalAvgPool2d)
@leaf_flops.register(Flatten)
def _(layer, shape: Shape) -> int:
    return 0  # elementwise, pooling, normalisation, flatten: not counted (module docstring)


def layer_flops(spec: ModelSpec) -> dict[str, int]:
    """Forward FLOPs per top-level layer for one image: the sum over the elementary layers under it."""
    shape: Shape = input_shape(spec)
    flops = {}
    for name, layer in spec.layers:
        flops[name] = sum(leaf_flops(leaf, leaf_shape) for _, leaf, leaf_shape in walk(((name, layer),), shape))
        shape = layer_output_shape(layer, shape)
    return flops


def forward_flops(spec: ModelSpec) -> int:
    """Forward FLOPs for one image."""
    return sum(layer_flops(spec).values())


def train_step_flops(spec: ModelSpec, batch_size: int) -> int:
    """FLOPs of one optimizer step on ``batch_size`` images (the optimizer's own update is not counted)."""
    return TRAIN_STEP_FORWARDS * forward_flops(spec) * batch_size
