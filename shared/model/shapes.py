"""Shapes worked out from a spec alone: per-layer outputs and every parameter, in the canonical layout.

The canonical layout is PyTorch's: activations (C, H, W) without the batch, conv kernels (out, in, kh, kw), Linear
weights (out, in). Parameter names are ``<leaf layer>.<weight|bias|running_mean|running_var>``, which for
``resnet18`` are exactly torchvision's ``state_dict`` keys (less ``num_batches_tracked``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast
from collections.abc import Iterator

from shared.model.rules import layer_rule
from shared.model.specs import (AvgPool2d, BatchNorm2d, Conv2d, Flatten, GlobalAvgPool2d, Layer, Linear, MaxPool2d,
                                ModelSpec, NamedLayers, Normalize, ReLU, ReLU6, Residual, Sequential, leaf_layers)

Shape = tuple[int, ...]


@dataclass(frozen=True)
class ParamInfo:
    name: str  # "<leaf layer>.<kind>", e.g. "layer1.0.bn1.running_var"
    shape: tuple[int, ...]  # canonical (PyTorch) layout
    trainable: bool  # False for BatchNorm running statistics
    layer: Layer  # the leaf layer that owns it

    @property
    def kind(self) -> str:
        return self.name.rsplit(".", 1)[1]

    @property
    def layer_name(self) -> str:
        return self.name.rsplit(".", 1)[0]


def _conv_out(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


@layer_rule("shape")
def layer_output_shape(layer: Layer, shape: Shape) -> Shape:
    """Output shape (no batch) of one layer given its input shape; images are (C, H, W) after Normalize."""


@layer_output_shape.register
def _(layer: Normalize, shape: Shape) -> Shape:
    height, width, channels = shape  # the model input is NHWC; Normalize hands on canonical CHW
    return channels, height, width


@layer_output_shape.register(ReLU)
@layer_output_shape.register(ReLU6)
@layer_output_shape.register(BatchNorm2d)
def _(layer, shape: Shape) -> Shape:
    return shape


@layer_output_shape.register
def _(layer: Conv2d, shape: Shape) -> Shape:
    channels, height, width = shape
    if channels != layer.in_channels:
        raise ValueError(f"{layer} expects {layer.in_channels} channels, gets {channels}")
    return (layer.out_channels, _conv_out(height, layer.kernel, layer.stride, layer.padding),
            _conv_out(width, layer.kernel, layer.stride, layer.padding))


@layer_output_shape.register(MaxPool2d)
@layer_output_shape.register(AvgPool2d)
def _(layer, shape: Shape) -> Shape:
    channels, height, width = shape
    padding = getattr(layer, "padding", 0)
    return (channels, _conv_out(height, layer.kernel, layer.stride, padding),
            _conv_out(width, layer.kernel, layer.stride, padding))


@layer_output_shape.register
def _(layer: GlobalAvgPool2d, shape: Shape) -> Shape:
    return shape[0], 1, 1


@layer_output_shape.register
def _(layer: Flatten, shape: Shape) -> Shape:
    return (_size(shape),)


@layer_output_shape.register
def _(layer: Linear, shape: Shape) -> Shape:
    if shape != (layer.in_features,):
        raise ValueError(f"{layer} expects ({layer.in_features},), gets {shape}")
    return (layer.out_features,)


def path_output_shape(layers: NamedLayers, shape: Shape) -> Shape:
    for _, layer in layers:
        shape = layer_output_shape(layer, shape)
    return shape


@layer_output_shape.register
def _(layer: Sequential, shape: Shape) -> Shape:
    return path_output_shape(layer.layers, shape)


@layer_output_shape.register
def _(layer: Residual, shape: Shape) -> Shape:
    main = path_output_shape(layer.main, shape)
    shortcut = path_output_shape(layer.shortcut, shape)
    if main != shortcut:
        raise ValueError(f"a residual block adds its main path's {main} to its shortcut's {shortcut}")
    return path_output_shape(layer.after, main)


def walk(layers: NamedLayers, shape: Shape, prefix: str = "") -> Iterator[tuple[str, Layer, Shape]]:
    """(full dotted name, elementary layer, its input shape) for every layer under ``layers`` in execution order,
    following each path of a composite from the input that path reads."""
    for name, layer in layers:
        full = f"{prefix}{name}"
        if isinstance(layer, Sequential):
            yield from walk(layer.layers, shape, f"{full}.")
        elif isinstance(layer, Residual):
            yield from walk(layer.main, shape, f"{full}.")
            yield from walk(layer.shortcut, shape, f"{full}.")
            yield from walk(layer.after, path_output_shape(layer.main, shape), f"{full}.")
        else:
            yield full, layer, shape
        shape = layer_output_shape(layer, shape)


def input_shape(spec: ModelSpec) -> tuple[int, int, int]:
    """The model input without the batch: NHWC, 3 channels."""
    return spec.image_size, spec.image_size, 3


def output_shapes(spec: ModelSpec) -> list[tuple[str, tuple[int, ...]]]:
    """(top-level layer name, canonical output shape) for every layer of the spec, in order."""
    shape: tuple[int, ...] = input_shape(spec)
    shapes = []
    for name, layer in spec.layers:
        shape = layer_output_shape(layer, shape)
        shapes.append((name, shape))
    return shapes


def flatten_input_shapes(spec: ModelSpec) -> dict[str, tuple[int, int, int]]:
    """For each Linear fed by a Flatten: the (C, H, W) map that was flattened, keyed by the Linear's full name. NHWC
    backends permute these Linears' weights."""
    found: dict[str, tuple[int, int, int]] = {}
    flattened: tuple[int, int, int] | None = None
    for name, layer, shape in walk(spec.layers, input_shape(spec)):
        if isinstance(layer, Linear) and flattened is not None:
            found[name] = flattened
        # a Flatten reads a (C, H, W) map in every spec: the layers before it are 2-D
        flattened = cast(tuple[int, int, int], shape) if isinstance(layer, Flatten) else None
    if flattened is not None:
        raise ValueError(f"{spec.name}: a Flatten must feed a Linear")
    return found


@layer_rule("parameters", leaves_only=True)
def layer_parameters(layer: Layer, name: str) -> list[ParamInfo]:
    """The weights and buffers of one elementary layer named ``name``, in canonical layout and state_dict order."""


@layer_parameters.register(Normalize)
@layer_parameters.register(ReLU)
@layer_parameters.register(ReLU6)
@layer_parameters.register(MaxPool2d)
@layer_parameters.register(AvgPool2d)
@layer_parameters.register(GlobalAvgPool2d)
@layer_parameters.register(Flatten)
def _(layer, name: str) -> list[ParamInfo]:
    return []


@layer_parameters.register
def _(layer: Conv2d, name: str) -> list[ParamInfo]:
    shape = (layer.out_channels, layer.in_channels // layer.groups, layer.kernel, layer.kernel)
    params = [ParamInfo(f"{name}.weight", shape, True, layer)]
    if layer.bias:
        params.append(ParamInfo(f"{name}.bias", (layer.out_channels,), True, layer))
    return params


@layer_parameters.register
def _(layer: Linear, name: str) -> list[ParamInfo]:
    params = [ParamInfo(f"{name}.weight", (layer.out_features, layer.in_features), True, layer)]
    if layer.bias:
        params.append(ParamInfo(f"{name}.bias", (layer.out_features,), True, layer))
    return params


@layer_parameters.register
def _(layer: BatchNorm2d, name: str) -> list[ParamInfo]:
    return [ParamInfo(f"{name}.{kind}", (layer.channels,), trainable, layer)
            for kind, trainable in (("weight", True), ("bias", True), ("running_mean", False),
                                    ("running_var", False))]


def parameters(spec: ModelSpec) -> list[ParamInfo]:
    """Every weight and buffer of the model in canonical layout, in torchvision's state_dict order."""
    return [param for name, layer in leaf_layers(spec) for param in layer_parameters(layer, name)]


def _size(shape: tuple[int, ...]) -> int:
    total = 1
    for dim in shape:
        total *= dim
    return total


def trainable_params_by_layer(spec: ModelSpec) -> dict[str, int]:
    """Trainable parameter count per top-level layer (0 for layers without parameters)."""
    counts = {name: 0 for name, _ in spec.layers}
    for param in parameters(spec):
        if param.trainable:
            top = next(name for name in counts if param.name.startswith(name + "."))
            counts[top] += _size(param.shape)
    return counts


def count_trainable(spec: ModelSpec) -> int:
    return sum(trainable_params_by_layer(spec).values())
