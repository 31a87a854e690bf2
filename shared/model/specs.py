"""Architectures as data: frozen layer dataclasses and the model spec that strings them together.

Backends *translate* these specs (``cnnlab_torch.model``, ``cnnlab_tf.model``); nothing here knows about a
framework. Hyperparameters follow PyTorch's conventions (symmetric integer padding, BatchNorm momentum as the weight
of the new batch statistic), and each backend maps them to its own in exactly one place.

Every model takes NHWC float32 images with 0-255 pixel values and returns logits, because the first layer of every
spec is ``Normalize``. The registry of named specs lives in ``shared.model.registry``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union


@dataclass(frozen=True)
class Normalize:
    """(x / 255 - mean) / std per channel; input NHWC 0-255. Constants only, so it adds no parameters or buffers."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]


@dataclass(frozen=True)
class Conv2d:
    in_channels: int
    out_channels: int
    kernel: int  # square kernel side, pixels
    stride: int = 1
    padding: int = 0  # zeros on every side, PyTorch-style (symmetric)
    bias: bool = True
    # "uniform_fan_in": PyTorch's default nn.Conv2d init; "kaiming_normal_fan_out": torchvision ResNet's init.
    init: str = "uniform_fan_in"


@dataclass(frozen=True)
class BatchNorm2d:
    channels: int
    eps: float = 1e-5
    momentum: float = 0.1  # PyTorch convention: running = (1 - momentum) * running + momentum * batch


@dataclass(frozen=True)
class ReLU:
    pass


@dataclass(frozen=True)
class MaxPool2d:
    kernel: int
    stride: int  # pixels; PyTorch's default stride=kernel is spelled out in the spec
    padding: int = 0  # padded with -inf, as PyTorch does


@dataclass(frozen=True)
class AvgPool2d:
    kernel: int
    stride: int  # no padding: averaging padded zeros is a convention the specs do not need


@dataclass(frozen=True)
class GlobalAvgPool2d:
    """Mean over H and W, keeping a 1x1 spatial map (torchvision's ``AdaptiveAvgPool2d((1, 1))``)."""


@dataclass(frozen=True)
class Flatten:
    """Flattens in canonical (C, H, W) order; an NHWC backend permutes the next Linear's weight instead."""


@dataclass(frozen=True)
class Linear:
    in_features: int
    out_features: int
    bias: bool = True


@dataclass(frozen=True)
class BasicBlock:
    """ResNet basic block: conv3x3-BN-ReLU-conv3x3-BN, plus a 1x1 conv + BN shortcut when the shape changes."""

    in_channels: int
    out_channels: int
    stride: int = 1

    @property
    def has_downsample(self) -> bool:
        return self.stride != 1 or self.in_channels != self.out_channels


@dataclass(frozen=True)
class Stage:
    """A run of residual blocks, named ``<stage>.<index>`` like torchvision's ``layer1.0``."""

    blocks: tuple[BasicBlock, ...]


Layer = Union[Normalize, Conv2d, BatchNorm2d, ReLU, MaxPool2d, AvgPool2d, GlobalAvgPool2d, Flatten, Linear,
              BasicBlock, Stage]
# The layers without weights or buffers. Every place that dispatches on the layer type names each type or this
# tuple and raises TypeError for anything else, so a new layer type fails loudly until each place has its rule
# (shared/tests/model/test_layer_rules.py checks every type against every place).
PARAMETER_FREE = (Normalize, ReLU, MaxPool2d, AvgPool2d, GlobalAvgPool2d, Flatten)


@dataclass(frozen=True)
class ModelSpec:
    """A network: named layers applied in order. Names become parameter names (``<layer>.weight``)."""

    name: str  # registry name, e.g. "cifar_cnn_max"
    layers: tuple[tuple[str, Layer], ...]
    image_size: int  # square input side in pixels (H = W)
    classes: int  # number of logits

    def __post_init__(self):
        names = [name for name, _ in self.layers]
        assert len(names) == len(set(names)), f"duplicate layer names in spec {self.name}: {names}"


def block_layers(block: BasicBlock) -> tuple[tuple[str, Layer], ...]:
    """The named sub-layers of a residual block, in torchvision's names (``downsample.0`` is the 1x1 conv)."""
    layers: list[tuple[str, Layer]] = [
        ("conv1", Conv2d(block.in_channels, block.out_channels, 3, block.stride, 1, bias=False,
                         init="kaiming_normal_fan_out")),
        ("bn1", BatchNorm2d(block.out_channels)),
        ("conv2", Conv2d(block.out_channels, block.out_channels, 3, 1, 1, bias=False,
                         init="kaiming_normal_fan_out")),
        ("bn2", BatchNorm2d(block.out_channels)),
    ]
    if block.has_downsample:
        layers += [
            ("downsample.0", Conv2d(block.in_channels, block.out_channels, 1, block.stride, 0, bias=False,
                                    init="kaiming_normal_fan_out")),
            ("downsample.1", BatchNorm2d(block.out_channels)),
        ]
    return tuple(layers)


def leaf_layers(spec: ModelSpec) -> list[tuple[str, Layer]]:
    """Every parameterised or elementary layer with its full dotted name, residual blocks expanded."""
    leaves: list[tuple[str, Layer]] = []
    for name, layer in spec.layers:
        if isinstance(layer, Stage):
            for index, block in enumerate(layer.blocks):
                leaves += [(f"{name}.{index}.{sub}", sub_layer) for sub, sub_layer in block_layers(block)]
        elif isinstance(layer, BasicBlock):
            leaves += [(f"{name}.{sub}", sub_layer) for sub, sub_layer in block_layers(layer)]
        else:
            leaves.append((name, layer))
    return leaves
