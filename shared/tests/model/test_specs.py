"""The registry's specs against parameter counts and shapes worked out by hand."""

import pytest

from shared.model.registry import ARCHITECTURES, build_spec
from shared.model.shapes import count_trainable, output_shapes, parameters, trainable_params_by_layer

# Worked out by hand from the seed labs' layer lists (weights + biases):
#   cifar_cnn, 3 classes: conv1 3*32*5*5 + 32 = 2,432; conv2 32*64*3*3 + 64 = 18,496; fc 256*3 + 3 = 771.
#   cifar_improved (the lab report's network), 3 classes: input BatchNorm 3 + 3 = 6; conv1 3*64*3*3 + 64 = 1,792;
#   conv2 64*128*3*3 + 128 = 73,856; fc 128*3 + 3 = 387.
#   flowers_baseline, 224 px, 5 classes: six convs 1,126,080; fc1 200,704*1024 + 1024 = 205,521,920;
#   fc2 1024*512 + 512 = 524,800; fc3 512*5 + 5 = 2,565.
# torchvision's published ResNet-18 size: 11,689,512 with the 1000-class head; a 5-class head (512*5 + 5 instead
# of 512*1000 + 1000) gives 11,179,077.
PINNED = [
    ("cifar_cnn_stride", 3, 32, 21_699),
    ("cifar_cnn_max", 3, 32, 21_699),
    ("cifar_cnn_avg", 3, 32, 21_699),
    ("cifar_improved", 3, 32, 76_041),
    ("flowers_baseline", 5, 224, 207_175_365),
    ("resnet18", 1000, 224, 11_689_512),
    ("resnet18", 5, 224, 11_179_077),
]


@pytest.mark.parametrize("arch, classes, size, expected", PINNED, ids=[f"{a}-{c}cls-{s}px" for a, c, s, _ in PINNED])
def test_parameter_count_matches_hand_count(arch, classes, size, expected):
    spec = build_spec(arch, classes, size)
    assert count_trainable(spec) == expected, f"{arch}: {count_trainable(spec):,} parameters, expected {expected:,}"


def test_cifar_cnn_layers_by_hand():
    spec = build_spec("cifar_cnn_max", 3, 32)
    assert trainable_params_by_layer(spec) == {"normalize": 0, "conv1": 2432, "relu1": 0, "conv2": 18496,
                                               "relu2": 0, "pool": 0, "flatten": 0, "fc": 771}
    shapes = dict(output_shapes(spec))
    assert shapes["conv1"] == (32, 8, 8), "5x5 stride 4 pad 2 on 32 px gives 8x8"
    assert shapes["pool"] == (64, 2, 2) and shapes["flatten"] == (256,)


def test_cifar_improved_follows_the_lab_report():
    shapes = dict(output_shapes(build_spec("cifar_improved", 3, 32)))
    assert shapes["conv1"] == (64, 8, 8), "3x3 stride 4 pad 1 on 32 px gives 8x8"
    assert shapes["conv2"] == (128, 8, 8) and shapes["pool"] == (128, 1, 1) and shapes["flatten"] == (128,)


def test_pooling_variants_differ_only_in_how_they_shrink():
    stride = dict(output_shapes(build_spec("cifar_cnn_stride", 3, 32)))
    assert "pool" not in stride and stride["conv2"] == (64, 2, 2), "stride variant: conv2 does the 4x reduction"


def test_resnet18_parameter_names_are_torchvisions():
    names = [param.name for param in parameters(build_spec("resnet18", 1000, 224))]
    assert names[:6] == ["conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var",
                         "layer1.0.conv1.weight"]
    assert "layer2.0.downsample.0.weight" in names and "layer1.0.downsample.0.weight" not in names
    assert names[-2:] == ["fc.weight", "fc.bias"]


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_last_layer_gives_one_logit_per_class(arch):
    entry = ARCHITECTURES[arch]
    spec = build_spec(arch, 7, entry.min_image_size * 2)
    assert output_shapes(spec)[-1][1] == (7,)


def test_unknown_arch_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown architecture 'vgg'.*cifar_cnn_avg.*resnet18"):
        build_spec("vgg", 3, 32)


def test_image_size_that_does_not_divide_is_refused():
    with pytest.raises(ValueError, match="multiple of 16.*got 40"):
        build_spec("cifar_cnn_max", 3, 40)
