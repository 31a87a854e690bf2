"""PyTorch models from the registry's specs, and the ResNet-18 against torchvision's own."""

import numpy as np
import pytest
import torch
import torchvision

import cnnlab_torch.model
import cnnlab_torch.weights
from cnnlab_torch.model import SpecModel, build_model, predict_logits
from shared.model.registry import ARCHITECTURES, IMAGENET_MEAN, IMAGENET_STD, build_spec
from shared.model.shapes import layer_output_shape
from shared.model.specs import Normalize
from tests.support.helpers import check_model_follows_spec
from tests.support.layers import SAMPLES, Dropout
from shared.formats.tolerances import compare


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_model_follows_the_spec(arch):
    check_model_follows_spec(cnnlab_torch.model, cnnlab_torch.weights, arch)


def test_flowers_baseline_at_224_has_the_seed_labs_parameter_count():
    with torch.device("meta"):  # 207 M parameters: count them without allocating 830 MB
        model = SpecModel(build_spec("flowers_baseline", 5, 224))
    assert sum(param.numel() for param in model.parameters()) == 207_175_365


def test_resnet18_loads_torchvision_checkpoint_and_computes_the_same():
    reference = torchvision.models.resnet18(weights=None, num_classes=5).eval()
    with torch.no_grad():  # non-trivial BatchNorm statistics, so the check covers them too
        for module in reference.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    spec = build_spec("resnet18", 5, 64)
    model = build_model(spec)
    model.load_state_dict(reference.state_dict(), strict=True)  # same names, nothing missing or extra
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in reference.parameters())

    images = np.random.default_rng(1).uniform(0, 255, (3, 64, 64, 3)).astype(np.float32)
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = reference((torch.from_numpy(images).permute(0, 3, 1, 2) / 255 - mean) / std).numpy()
    within, difference, bound = compare(predict_logits(model, images, 3), expected, "same_weights")
    assert within, f"ResNet-18 differs from torchvision by {difference:.3g} (bound {bound:.3g})"


@pytest.mark.parametrize("kind", list(SAMPLES), ids=lambda kind: kind.__name__)
def test_each_layer_type_becomes_a_module_with_the_spec_s_output_shape(kind):
    layer, shape = SAMPLES[kind]
    module = cnnlab_torch.model.to_module(layer)
    output = module(torch.rand(2, *shape) * (255 if kind is Normalize else 1))
    assert tuple(output.shape[1:]) == layer_output_shape(layer, shape)


def test_a_layer_type_outside_the_union_has_no_module():
    with pytest.raises(TypeError, match="Dropout"):
        cnnlab_torch.model.to_module(Dropout())
