"""The registry of named architectures, exactly as the seed labs define them.

``build_spec(name, classes, image_size)`` is the one way to get a ``ModelSpec``. Tests parametrise over
``ARCHITECTURES`` so that a newly registered spec is covered without anyone writing a test for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Callable

from shared.model.specs import (AvgPool2d, BatchNorm2d, Conv2d, Flatten, GlobalAvgPool2d, Layer, Linear, MaxPool2d,
                                ModelSpec, Normalize, ReLU, ReLU6, Residual, Sequential)

# Per-channel statistics of the datasets the seed labs normalise with (RGB, on 0-1 pixels).
CIFAR100_MEAN, CIFAR100_STD = (0.5074, 0.4867, 0.4411), (0.2011, 0.1987, 0.2025)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _cifar_cnn(pooling: str, classes: int, image_size: int) -> ModelSpec:
    """The seed CIFAR-100 lab's network; ``pooling`` is how the second stage shrinks 8x8 to 2x2."""
    hidden = 32
    layers: list[tuple[str, Layer]] = [
        ("normalize", Normalize(CIFAR100_MEAN, CIFAR100_STD)),
        ("conv1", Conv2d(3, hidden, 5, stride=4, padding=2)),
        ("relu1", ReLU()),
        ("conv2", Conv2d(hidden, hidden * 2, 3, stride=4 if pooling == "stride" else 1, padding=1)),
        ("relu2", ReLU()),
    ]
    if pooling == "max":
        layers.append(("pool", MaxPool2d(4, 4)))
    elif pooling == "avg":
        layers.append(("pool", AvgPool2d(4, 4)))
    side = image_size // 16  # stride 4 twice, by conv or by pool
    layers += [("flatten", Flatten()), ("fc", Linear(hidden * 2 * side * side, classes))]
    return ModelSpec(f"cifar_cnn_{pooling}", tuple(layers), image_size, classes)


def _cifar_improved(classes: int, image_size: int) -> ModelSpec:
    """The CIFAR-100 lab's improved network, as the student's report describes it: BatchNorm on the input, a
    stride-4 3x3 conv to 64 channels, a 3x3 conv to 128, and an average over the whole 8x8 map in place of the
    flatten (the report's ``AvgPool2d(8)``, here global so that any image size works), then the classifier."""
    layers: list[tuple[str, Layer]] = [
        ("normalize", Normalize(CIFAR100_MEAN, CIFAR100_STD)),
        ("bn0", BatchNorm2d(3)),
        ("conv1", Conv2d(3, 64, 3, stride=4, padding=1)),
        ("relu1", ReLU()),
        ("conv2", Conv2d(64, 128, 3, stride=1, padding=1)),
        ("relu2", ReLU()),
        ("pool", GlobalAvgPool2d()),
        ("flatten", Flatten()),
        ("fc", Linear(128, classes)),
    ]
    return ModelSpec("cifar_improved", tuple(layers), image_size, classes)


def _flowers_baseline(classes: int, image_size: int) -> ModelSpec:
    """The seed flowers lab's from-scratch CNN: three conv-conv-pool stages and three Linear layers."""
    layers: list[tuple[str, Layer]] = [("normalize", Normalize(IMAGENET_MEAN, IMAGENET_STD))]
    channels = [3, 32, 64, 128, 128, 256, 256]
    for index in range(6):
        layers += [(f"conv{index + 1}", Conv2d(channels[index], channels[index + 1], 3, 1, 1)),
                   (f"relu{index + 1}", ReLU())]
        if index % 2 == 1:
            layers.append((f"pool{index // 2 + 1}", MaxPool2d(2, 2)))
    side = image_size // 8
    layers += [
        ("flatten", Flatten()),
        ("fc1", Linear(256 * side * side, 1024)), ("relu7", ReLU()),
        ("fc2", Linear(1024, 512)), ("relu8", ReLU()),
        ("fc3", Linear(512, classes)),
    ]
    return ModelSpec("flowers_baseline", tuple(layers), image_size, classes)


def _numbered(*layers: Layer) -> Sequential:
    """``nn.Sequential(*layers)``: children named 0, 1, 2..."""
    return Sequential(tuple((str(index), layer) for index, layer in enumerate(layers)))


def _basic_block(in_channels: int, out_channels: int, stride: int) -> Residual:
    """torchvision's ResNet ``BasicBlock``: conv3x3-BN-ReLU-conv3x3-BN, plus the input (through a 1x1 conv + BN
    ``downsample`` when the shape changes), then ReLU."""
    def conv(cin: int, kernel: int, stride: int) -> Conv2d:
        return Conv2d(cin, out_channels, kernel, stride, kernel // 2, bias=False, init="kaiming_normal_fan_out")

    shortcut: tuple[tuple[str, Layer], ...] = ()
    if stride != 1 or in_channels != out_channels:
        shortcut = (("downsample", _numbered(conv(in_channels, 1, stride), BatchNorm2d(out_channels))),)
    main = (("conv1", conv(in_channels, 3, stride)), ("bn1", BatchNorm2d(out_channels)), ("relu1", ReLU()),
            ("conv2", conv(out_channels, 3, 1)), ("bn2", BatchNorm2d(out_channels)))
    return Residual(main, shortcut, after=(("relu2", ReLU()),))


def _resnet18(classes: int, image_size: int) -> ModelSpec:
    """torchvision's ``resnet18`` with the same parameter names, so its ImageNet checkpoint loads unchanged."""
    def stage(in_channels: int, out_channels: int, stride: int) -> Sequential:
        return _numbered(_basic_block(in_channels, out_channels, stride), _basic_block(out_channels, out_channels, 1))

    layers: list[tuple[str, Layer]] = [
        ("normalize", Normalize(IMAGENET_MEAN, IMAGENET_STD)),
        ("conv1", Conv2d(3, 64, 7, stride=2, padding=3, bias=False, init="kaiming_normal_fan_out")),
        ("bn1", BatchNorm2d(64)),
        ("relu", ReLU()),
        ("maxpool", MaxPool2d(3, 2, padding=1)),
        ("layer1", stage(64, 64, 1)),
        ("layer2", stage(64, 128, 2)),
        ("layer3", stage(128, 256, 2)),
        ("layer4", stage(256, 512, 2)),
        ("avgpool", GlobalAvgPool2d()),
        ("flatten", Flatten()),
        ("fc", Linear(512, classes)),
    ]
    return ModelSpec("resnet18", tuple(layers), image_size, classes)


def _make_divisible(channels: float, divisor: int = 8) -> int:
    """torchvision's channel rounding for width multipliers: the nearest multiple of ``divisor``, never more than
    10% below ``channels``."""
    rounded = max(divisor, int(channels + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * channels else rounded


def _conv_bn_relu6(in_channels: int, out_channels: int, kernel: int, stride: int = 1,
                   depthwise: bool = False) -> Sequential:
    """torchvision's ``Conv2dNormActivation`` with ReLU6: a bias-free convolution, BatchNorm, ReLU6."""
    return _numbered(Conv2d(in_channels, out_channels, kernel, stride, (kernel - 1) // 2, bias=False,
                            init="kaiming_normal_fan_out", groups=in_channels if depthwise else 1),
                     BatchNorm2d(out_channels), ReLU6())


def _inverted_residual(in_channels: int, out_channels: int, stride: int, expand_ratio: int) -> Layer:
    """MobileNetV2's block: a 1x1 expansion (skipped at ratio 1), a depthwise 3x3, and a linear 1x1 projection with
    no activation (the "linear bottleneck"); the input is added back when the shape is kept. Named as torchvision's
    ``InvertedResidual`` (``conv.0.0.weight``...)."""
    hidden = round(in_channels * expand_ratio)
    path: list[Layer] = [] if expand_ratio == 1 else [_conv_bn_relu6(in_channels, hidden, 1)]
    path += [_conv_bn_relu6(hidden, hidden, 3, stride, depthwise=True),
             Conv2d(hidden, out_channels, 1, bias=False, init="kaiming_normal_fan_out"), BatchNorm2d(out_channels)]
    main = (("conv", _numbered(*path)),)
    return Residual(main) if stride == 1 and in_channels == out_channels else Sequential(main)


# MobileNetV2's body, from the paper's Table 2: (expansion t, output channels c, repeats n, first stride s)
_MOBILENET_V2_BLOCKS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                        (6, 320, 1, 1))


def _mobilenet_v2(classes: int, image_size: int, width: float = 1.0) -> ModelSpec:
    """torchvision's ``mobilenet_v2(width_mult=width)`` with the same parameter names, so its ImageNet checkpoint
    loads unchanged. Its classifier's ``Dropout(0.2)`` (``classifier.0``) is left out: a dropout mask is random
    numbers drawn by the framework, so the two frameworks' training would part after the first step."""
    channels = _make_divisible(32 * width)
    features: list[Layer] = [_conv_bn_relu6(3, channels, 3, stride=2)]
    for expand_ratio, out, repeats, stride in _MOBILENET_V2_BLOCKS:
        out = _make_divisible(out * width)
        for index in range(repeats):
            features.append(_inverted_residual(channels, out, stride if index == 0 else 1, expand_ratio))
            channels = out
    last = _make_divisible(1280 * max(1.0, width))
    features.append(_conv_bn_relu6(channels, last, 1))
    layers: list[tuple[str, Layer]] = [
        ("normalize", Normalize(IMAGENET_MEAN, IMAGENET_STD)),
        ("features", _numbered(*features)),
        ("pool", GlobalAvgPool2d()),
        ("flatten", Flatten()),
        ("classifier", Sequential((("1", Linear(last, classes, init="normal_0.01")),))),
    ]
    return ModelSpec("mobilenet_v2", tuple(layers), image_size, classes)


@dataclass(frozen=True)
class ArchEntry:
    build: Callable[[int, int], ModelSpec]  # (classes, image_size) -> spec
    min_image_size: int  # smallest square input the spec accepts, pixels
    image_size_multiple: int  # the input side must be a multiple of this (flatten sizes depend on it)
    description: str


ARCHITECTURES: dict[str, ArchEntry] = {
    "cifar_cnn_stride": ArchEntry(lambda c, s: _cifar_cnn("stride", c, s), 16, 16,
                                  "seed CIFAR-100 CNN, second conv downsamples with stride 4"),
    "cifar_cnn_max": ArchEntry(lambda c, s: _cifar_cnn("max", c, s), 16, 16,
                               "seed CIFAR-100 CNN, 4x4 max pooling after the second conv"),
    "cifar_cnn_avg": ArchEntry(lambda c, s: _cifar_cnn("avg", c, s), 16, 16,
                               "seed CIFAR-100 CNN, 4x4 average pooling after the second conv"),
    "cifar_improved": ArchEntry(_cifar_improved, 8, 4,
                                "the CIFAR-100 lab's improved CNN: input BatchNorm, two convs, global average pool"),
    "flowers_baseline": ArchEntry(_flowers_baseline, 8, 8, "seed flowers CNN trained from scratch"),
    "resnet18": ArchEntry(_resnet18, 32, 32, "torchvision ResNet-18 layout (ImageNet checkpoint compatible)"),
    "mobilenet_v2": ArchEntry(_mobilenet_v2, 32, 32, "torchvision MobileNetV2 layout: inverted residuals, "
                              "depthwise convolutions, ReLU6 (ImageNet checkpoint compatible)"),
}


def build_spec(name: str, classes: int, image_size: int) -> ModelSpec:
    """The registered spec ``name`` for ``classes`` logits on ``image_size`` x ``image_size`` inputs."""
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; choose from: {', '.join(sorted(ARCHITECTURES))}")
    entry = ARCHITECTURES[name]
    if image_size < entry.min_image_size or image_size % entry.image_size_multiple:
        raise ValueError(f"{name} needs an image size that is a multiple of {entry.image_size_multiple} "
                         f"and at least {entry.min_image_size} pixels, got {image_size}")
    if classes < 2:
        raise ValueError(f"a classifier needs at least 2 classes, got {classes}")
    return entry.build(classes, image_size)
