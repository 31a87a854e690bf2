"""Floating-point work of a spec's forward pass and training step, counted from the spec alone.

Only convolutions and Linear layers are counted, as multiply-adds times two: a convolution costs
2 * Cin * Cout * k * k * Hout * Wout per image (the specs have no grouped convolutions), a Linear 2 * in * out.
BatchNorm, ReLU, pooling, the residual additions and the input normalisation are left out, as in the published
figures for torchvision's models (ResNet-18 at 224 px: 1.814 G multiply-adds); they are a few operations per
activation against hundreds per output of a convolution.

A training step is counted as three forward passes: the backward pass computes the gradient with respect to each
layer's input and with respect to its weights, each as costly as the forward product.
"""

from __future__ import annotations

from shared.model.shapes import input_shape, layer_output_shape
from shared.model.specs import (PARAMETER_FREE, BasicBlock, BatchNorm2d, Conv2d, Layer, Linear, ModelSpec, Stage,
                                block_layers)

TRAIN_STEP_FORWARDS = 3  # forward + gradient w.r.t. inputs + gradient w.r.t. weights


def _conv_flops(conv: Conv2d, output: tuple[int, ...]) -> int:
    _, height, width = output
    return 2 * conv.in_channels * conv.out_channels * conv.kernel * conv.kernel * height * width


def _block_flops(block: BasicBlock, shape: tuple[int, ...]) -> int:
    """Both 3x3 convolutions on the main path, and the 1x1 shortcut convolution, which reads the block's input."""
    layers = dict(block_layers(block))
    middle = layer_output_shape(layers["conv1"], shape)
    output = layer_output_shape(layers["conv2"], middle)
    total = _conv_flops(layers["conv1"], middle) + _conv_flops(layers["conv2"], output)
    if block.has_downsample:
        total += _conv_flops(layers["downsample.0"], layer_output_shape(layers["downsample.0"], shape))
    return total


def _layer_flops(layer: Layer, shape: tuple[int, ...]) -> int:
    """Forward FLOPs of one top-level layer for one image whose input has ``shape`` (canonical, no batch)."""
    if isinstance(layer, Conv2d):
        return _conv_flops(layer, layer_output_shape(layer, shape))
    if isinstance(layer, Linear):
        return 2 * layer.in_features * layer.out_features
    if isinstance(layer, BasicBlock):
        return _block_flops(layer, shape)
    if isinstance(layer, Stage):
        total = 0
        for block in layer.blocks:
            total += _block_flops(block, shape)
            shape = layer_output_shape(block, shape)
        return total
    if isinstance(layer, (*PARAMETER_FREE, BatchNorm2d)):
        return 0  # elementwise, pooling, normalisation, flatten: not counted (module docstring)
    raise TypeError(f"no FLOPs rule for layer {layer!r}")


def layer_flops(spec: ModelSpec) -> dict[str, int]:
    """Forward FLOPs per top-level layer for one image."""
    shape: tuple[int, ...] = input_shape(spec)
    flops = {}
    for name, layer in spec.layers:
        flops[name] = _layer_flops(layer, shape)
        shape = layer_output_shape(layer, shape)
    return flops


def forward_flops(spec: ModelSpec) -> int:
    """Forward FLOPs for one image."""
    return sum(layer_flops(spec).values())


def train_step_flops(spec: ModelSpec, batch_size: int) -> int:
    """FLOPs of one optimizer step on ``batch_size`` images (the optimizer's own update is not counted)."""
    return TRAIN_STEP_FORWARDS * forward_flops(spec) * batch_size
