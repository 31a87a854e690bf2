"""Architectures as data: frozen layer dataclasses and the model spec that strings them together.

Backends *translate* these specs (``cnnlab_torch.model``, ``cnnlab_tf.model``); nothing here knows about a
framework. Hyperparameters follow PyTorch's conventions (symmetric integer padding, BatchNorm momentum as the weight
of the new batch statistic), and each backend maps them to its own in exactly one place.

Every model takes NHWC float32 images with 0-255 pixel values and returns logits, because the first layer of every
spec is ``Normalize``. The registry of named specs lives in ``shared.model.registry``.
"""

from __future__ import annotations

from dataclasses import dataclass


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
    # "uniform_fan_in": PyTorch's default nn.Conv2d init; "kaiming_normal_fan_out": torchvision ResNet's and
    # MobileNetV2's init.
    init: str = "uniform_fan_in"
    # 1: a full convolution; in_channels (== out_channels): depthwise, one filter per channel, as MobileNet's
    # blocks use. Other groupings are refused: TensorFlow has no grouped convolution kernel for CPUs.
    groups: int = 1

    def __post_init__(self):
        if self.groups != 1 and not self.groups == self.in_channels == self.out_channels:
            raise ValueError(f"Conv2d groups={self.groups}: only 1 or depthwise (groups == in_channels == "
                             f"out_channels, here {self.in_channels} and {self.out_channels}) are supported")

    @property
    def depthwise(self) -> bool:
        return self.groups != 1


@dataclass(frozen=True)
class BatchNorm2d:
    channels: int
    eps: float = 1e-5
    momentum: float = 0.1  # PyTorch convention: running = (1 - momentum) * running + momentum * batch


@dataclass(frozen=True)
class ReLU:
    pass


@dataclass(frozen=True)
class ReLU6:
    """min(max(x, 0), 6): MobileNet's activation, which keeps activations in a range low-precision kernels hold."""


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
    # "uniform_fan_in": PyTorch's default nn.Linear init; "normal_0.01": weights N(0, 0.01), bias 0, as torchvision
    # initialises MobileNetV2's classifier.
    init: str = "uniform_fan_in"


NamedLayers = tuple[tuple[str, "Layer"], ...]  # (name, layer) pairs applied in order; names become dotted prefixes


class Composite:
    """A layer made of named layers. Parameter names nest: ``<composite>.<child>.weight``."""

    def children(self) -> NamedLayers:
        raise NotImplementedError


@dataclass(frozen=True)
class Sequential(Composite):
    """Named layers applied in order, as ``nn.Sequential``: torchvision's ``layer1`` or ``features``."""

    layers: NamedLayers

    def children(self) -> NamedLayers:
        return self.layers


@dataclass(frozen=True)
class Residual(Composite):
    """``after(main(x) + shortcut(x))``: a residual block. An empty ``shortcut`` is the identity and an empty
    ``after`` leaves the sum as it is (MobileNetV2's linear bottleneck). Every child is named at the block's level,
    as torchvision names them (``layer1.0.conv1``, ``layer1.0.downsample.0``), so the three paths share one
    namespace."""

    main: NamedLayers
    shortcut: NamedLayers = ()
    after: NamedLayers = ()

    def children(self) -> NamedLayers:
        return self.main + self.shortcut + self.after

    def __post_init__(self):
        names = [name for name, _ in self.children()]
        if len(names) != len(set(names)):
            raise ValueError(f"a residual block's layers need distinct names, got {names}")


Layer = (Normalize | Conv2d | BatchNorm2d | ReLU | ReLU6 | MaxPool2d | AvgPool2d | GlobalAvgPool2d | Flatten | Linear
         | Sequential | Residual)
LEAF_TYPES = (Normalize, Conv2d, BatchNorm2d, ReLU, ReLU6, MaxPool2d, AvgPool2d, GlobalAvgPool2d, Flatten, Linear)


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


def named_leaves(layers: NamedLayers, prefix: str = "") -> list[tuple[str, Layer]]:
    """Every elementary layer under ``layers`` with its full dotted name, composites expanded."""
    leaves: list[tuple[str, Layer]] = []
    for name, layer in layers:
        if isinstance(layer, Composite):
            leaves += named_leaves(layer.children(), f"{prefix}{name}.")
        else:
            leaves.append((f"{prefix}{name}", layer))
    return leaves


def leaf_layers(spec: ModelSpec) -> list[tuple[str, Layer]]:
    """Every parameterised or elementary layer of the spec with its full dotted name, composites expanded."""
    return named_leaves(spec.layers)
