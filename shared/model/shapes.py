"""Shapes worked out from a spec alone: per-layer outputs and every parameter, in the canonical layout.

The canonical layout is PyTorch's: activations (C, H, W) without the batch, conv kernels (out, in, kh, kw), Linear
weights (out, in). Parameter names are ``<leaf layer>.<weight|bias|running_mean|running_var>``, which for
``resnet18`` are exactly torchvision's ``state_dict`` keys (less ``num_batches_tracked``).
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.model.specs import (PARAMETER_FREE, AvgPool2d, BasicBlock, BatchNorm2d, Conv2d, Flatten, GlobalAvgPool2d,
                                Layer, Linear, MaxPool2d, ModelSpec, Normalize, ReLU, Stage, block_layers, leaf_layers)


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


def layer_output_shape(layer: Layer, shape: tuple[int, ...]) -> tuple[int, ...]:
    """Output shape (no batch) of one layer given its input shape; images are (C, H, W) after Normalize."""
    if isinstance(layer, Normalize):
        height, width, channels = shape  # the model input is NHWC; Normalize hands on canonical CHW
        return channels, height, width
    if isinstance(layer, (ReLU, BatchNorm2d)):
        return shape
    if isinstance(layer, Conv2d):
        channels, height, width = shape
        assert channels == layer.in_channels, f"conv expects {layer.in_channels} channels, gets {channels}"
        return (layer.out_channels, _conv_out(height, layer.kernel, layer.stride, layer.padding),
                _conv_out(width, layer.kernel, layer.stride, layer.padding))
    if isinstance(layer, (MaxPool2d, AvgPool2d)):
        channels, height, width = shape
        padding = getattr(layer, "padding", 0)
        return (channels, _conv_out(height, layer.kernel, layer.stride, padding),
                _conv_out(width, layer.kernel, layer.stride, padding))
    if isinstance(layer, GlobalAvgPool2d):
        return shape[0], 1, 1
    if isinstance(layer, Flatten):
        size = 1
        for dim in shape:
            size *= dim
        return (size,)
    if isinstance(layer, Linear):
        assert shape == (layer.in_features,), f"Linear expects ({layer.in_features},), gets {shape}"
        return (layer.out_features,)
    if isinstance(layer, BasicBlock):
        for _, sub_layer in block_layers(layer):
            if isinstance(sub_layer, Conv2d) and sub_layer.kernel == 3:
                shape = layer_output_shape(sub_layer, shape)
        return shape
    if isinstance(layer, Stage):
        for block in layer.blocks:
            shape = layer_output_shape(block, shape)
        return shape
    raise TypeError(f"no shape rule for layer {layer!r}")


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
    """For each Linear fed by a Flatten: the (C, H, W) map that was flattened. NHWC backends permute these."""
    shapes = dict(output_shapes(spec))
    names = [name for name, _ in spec.layers]
    found = {}
    for index, (name, layer) in enumerate(spec.layers):
        if isinstance(layer, Flatten):
            source = shapes[names[index - 1]]
            following = spec.layers[index + 1]
            assert isinstance(following[1], Linear), f"{spec.name}: Flatten must feed a Linear"
            found[following[0]] = source
    return found


def parameters(spec: ModelSpec) -> list[ParamInfo]:
    """Every weight and buffer of the model in canonical layout, in torchvision's state_dict order."""
    params = []
    for name, layer in leaf_layers(spec):
        if isinstance(layer, Conv2d):
            params.append(ParamInfo(f"{name}.weight",
                                    (layer.out_channels, layer.in_channels, layer.kernel, layer.kernel), True, layer))
            if layer.bias:
                params.append(ParamInfo(f"{name}.bias", (layer.out_channels,), True, layer))
        elif isinstance(layer, Linear):
            params.append(ParamInfo(f"{name}.weight", (layer.out_features, layer.in_features), True, layer))
            if layer.bias:
                params.append(ParamInfo(f"{name}.bias", (layer.out_features,), True, layer))
        elif isinstance(layer, BatchNorm2d):
            for kind, trainable in (("weight", True), ("bias", True), ("running_mean", False),
                                    ("running_var", False)):
                params.append(ParamInfo(f"{name}.{kind}", (layer.channels,), trainable, layer))
        elif not isinstance(layer, PARAMETER_FREE):
            raise TypeError(f"no parameter rule for layer {layer!r}")
    return params


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
