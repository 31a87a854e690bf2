"""Same layers, same shapes, same parameter counts: per layer, in total, and against independent numbers."""

import numpy as np
import pytest
import torch
import torchvision

import cnnlab_tf.model
import cnnlab_torch.model
from parity_tests.pairs import PARITY_CLASSES, random_images
from shared.model import shapes
from shared.model.registry import ARCHITECTURES, build_spec

ARCHS = sorted(ARCHITECTURES)

# Trainable parameters at the parity suite's sizes with 5 classes, worked out by hand (weights + biases):
#   cifar_cnn_*, 32 px: conv1 3*32*25 + 32 = 2,432; conv2 32*64*9 + 64 = 18,496; fc 256*5 + 5 = 1,285.
#   flowers_baseline, 16 px: convs 896 + 18,496 + 73,856 + 147,584 + 295,168 + 590,080 = 1,126,080;
#     fc1 (256*2*2)*1024 + 1024 = 1,049,600; fc2 1024*512 + 512 = 524,800; fc3 512*5 + 5 = 2,565.
#   cifar_improved, any size: bn0 3 + 3 = 6; conv1 3*64*9 + 64 = 1,792; conv2 64*128*9 + 128 = 73,856;
#     fc 128*5 + 5 = 645.
#   resnet18: torchvision's ResNet-18 is 11,689,512 with 1000 classes; 5 classes drop 995*513 = 510,435.
#   mobilenet_v2: torchvision's MobileNetV2 is 3,504,872 with 1000 classes; its classifier's 1280*1000 + 1000 =
#     1,281,000 become 1280*5 + 5 = 6,405.
PINNED_TOTALS = {"cifar_cnn_stride": 22_213, "cifar_cnn_max": 22_213, "cifar_cnn_avg": 22_213,
                 "cifar_improved": 76_299, "flowers_baseline": 2_703_045, "resnet18": 11_179_077,
                 "mobilenet_v2": 2_230_277}


def test_every_registered_spec_has_a_pinned_count():
    assert sorted(PINNED_TOTALS) == ARCHS, "a new spec needs its parameter count worked out and pinned here"


@pytest.mark.parametrize("arch", ARCHS)
def test_layer_output_shapes_agree(arch, pairs):
    pair = pairs(arch)
    torch_layers, keras_layers = pair.layer_outputs(random_images(pair.spec, 2, seed=0))
    torch_shapes = {name: value.shape for name, value in torch_layers.items()}
    keras_shapes = {name: value.shape for name, value in keras_layers.items()}
    assert keras_shapes == torch_shapes, "shapes in canonical NCHW layout"
    assert torch_shapes == {name: (2, *shape) for name, shape in shapes.output_shapes(pair.spec)}


@pytest.mark.parametrize("arch", ARCHS)
def test_trainable_parameter_counts_agree(arch, pairs):
    pair = pairs(arch)
    torch_counts = cnnlab_torch.model.trainable_params_by_layer(pair.torch_model, pair.spec)
    keras_counts = cnnlab_tf.model.trainable_params_by_layer(pair.keras_model, pair.spec)
    assert keras_counts == torch_counts, "per-layer trainable counts"
    assert cnnlab_torch.model.count_trainable(pair.torch_model) == PINNED_TOTALS[arch]
    assert cnnlab_tf.model.count_trainable(pair.keras_model) == PINNED_TOTALS[arch]


def test_resnet18_counts_match_torchvision_layer_by_layer(pairs):
    reference = torchvision.models.resnet18(weights=None, num_classes=PARITY_CLASSES)
    expected = {name: sum(p.numel() for p in module.parameters()) for name, module in reference.named_children()}
    keras_counts = cnnlab_tf.model.trainable_params_by_layer(pairs("resnet18").keras_model, pairs("resnet18").spec)
    assert {name: count for name, count in keras_counts.items() if name in expected} == expected
    assert sum(expected.values()) == PINNED_TOTALS["resnet18"]


def test_flowers_baseline_at_224_in_both_frameworks():
    spec = build_spec("flowers_baseline", 5, 224)
    with torch.device("meta"):  # count without allocating the 830 MB first Linear
        torch_model = cnnlab_torch.model.SpecModel(spec)
    assert cnnlab_torch.model.count_trainable(torch_model) == 207_175_365
    keras_model = cnnlab_tf.model.build_model(spec)
    assert cnnlab_tf.model.count_trainable(keras_model) == 207_175_365
    assert int(np.prod(keras_model.get_layer("fc1").kernel.shape)) == 256 * 28 * 28 * 1024
