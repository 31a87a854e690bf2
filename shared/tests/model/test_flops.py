"""The FLOP counter against hand counts and against torchvision's published figure for ResNet-18."""

import pytest

from shared.model.flops import forward_flops, layer_flops, train_step_flops
from shared.model.registry import ARCHITECTURES, build_spec
from shared.model.specs import (BatchNorm2d, Conv2d, Flatten, Linear, MaxPool2d, ModelSpec, Normalize, ReLU, Residual,
                                Sequential)

TINY = ModelSpec("tiny", (
    ("normalize", Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))),
    ("conv", Conv2d(3, 4, 3, stride=1, padding=1)),  # 8x8 in, 4 x 8x8 out
    ("relu", ReLU()),
    ("pool", MaxPool2d(2, 2)),  # 4 x 4x4
    # 8 x 2x2: ResNet's basic block, with a 1x1 shortcut convolution
    ("block", Residual((("conv1", Conv2d(4, 8, 3, 2, 1, bias=False)), ("bn1", BatchNorm2d(8)), ("relu1", ReLU()),
                        ("conv2", Conv2d(8, 8, 3, 1, 1, bias=False)), ("bn2", BatchNorm2d(8))),
                       (("downsample", Sequential((("0", Conv2d(4, 8, 1, 2, bias=False)), ("1", BatchNorm2d(8))))),),
                       (("relu2", ReLU()),))),
    ("flatten", Flatten()),  # 32
    ("fc", Linear(32, 10)),
), image_size=8, classes=10)


def test_a_tiny_spec_by_hand():
    conv = 2 * 3 * 4 * 3 * 3 * 8 * 8  # 2 * Cin * Cout * k * k * Hout * Wout
    block = (2 * 4 * 8 * 3 * 3 * 2 * 2  # conv1, stride 2: 4x4 -> 2x2
             + 2 * 8 * 8 * 3 * 3 * 2 * 2  # conv2
             + 2 * 4 * 8 * 1 * 1 * 2 * 2)  # downsample.0, reading the block's 4 x 4x4 input
    fc = 2 * 32 * 10
    assert layer_flops(TINY) == {"normalize": 0, "conv": conv, "relu": 0, "pool": 0, "block": block, "flatten": 0,
                                 "fc": fc}
    assert forward_flops(TINY) == conv + block + fc == 13824 + 7168 + 640
    assert train_step_flops(TINY, 32) == 3 * 32 * forward_flops(TINY)


def test_resnet18_at_224_matches_torchvisions_published_count():
    # torchvision's ResNet18_Weights.IMAGENET1K_V1 lists 1.814 GFLOPS, which are multiply-adds (fvcore counts one
    # per multiply-add): about 3.63 GFLOPs forward.
    multiply_adds = forward_flops(build_spec("resnet18", 1000, 224)) / 2
    assert multiply_adds == pytest.approx(1.814e9, abs=0.0005e9), multiply_adds


def test_mobilenet_v2_at_224_matches_torchvisions_published_count():
    # torchvision's MobileNet_V2_Weights.IMAGENET1K_V1 lists 0.301 GFLOPS (multiply-adds), for 3,504,872 parameters
    multiply_adds = forward_flops(build_spec("mobilenet_v2", 1000, 224)) / 2
    assert multiply_adds == pytest.approx(0.301e9, abs=0.0005e9), multiply_adds


def test_a_depthwise_convolution_reads_one_channel_per_output():
    spec = ModelSpec("dw", (("normalize", Normalize((0.5,) * 3, (0.5,) * 3)),
                            ("dw", Conv2d(3, 3, 3, padding=1, groups=3)), ("pool", MaxPool2d(8, 8)),
                            ("flatten", Flatten()), ("fc", Linear(3, 2))), image_size=8, classes=2)
    assert layer_flops(spec)["dw"] == 2 * 1 * 3 * 3 * 3 * 8 * 8  # 2 * (Cin / groups) * Cout * k * k * H * W


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_work_grows_with_the_square_of_the_image_side(arch):
    # The convolutions' outputs have 4x the pixels at twice the side; the Linear layers fed by Flatten grow too,
    # so the count grows by at least 3x and at most 4x.
    entry = ARCHITECTURES[arch]
    small = max(entry.min_image_size, 32)
    ratio = forward_flops(build_spec(arch, 5, 2 * small)) / forward_flops(build_spec(arch, 5, small))
    assert 3 < ratio <= 4, f"{arch}: {ratio}"
