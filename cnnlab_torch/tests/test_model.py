"""PyTorch models from the registry's specs, and ResNet-18 and MobileNetV2 against torchvision's own."""

from typing import get_args

import numpy as np
import pytest
import torch
import torchvision

import cnnlab_torch.model
import cnnlab_torch.weights
from cnnlab_torch.model import (NormalizeNHWC, ResidualModule, SpecModel, SyncedBatchNorm2d, build_model, freeze,
                                predict_logits)
from shared.model.registry import ARCHITECTURES, IMAGENET_MEAN, IMAGENET_STD, build_spec
from shared.model.shapes import layer_output_shape
from shared.model.specs import Normalize
from shared.training.distributed import World
from tests.support.helpers import check_model_follows_spec, small_image_size
from shared.model.specs import Layer
from tests.support.layers import SAMPLES, Dropout, missing_rules
from shared.formats.tolerances import compare


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_model_follows_the_spec(arch):
    check_model_follows_spec(cnnlab_torch.model, cnnlab_torch.weights, arch)


def test_flowers_baseline_at_224_has_the_seed_labs_parameter_count():
    with torch.device("meta"):  # 207 M parameters: count them without allocating 830 MB
        model = SpecModel(build_spec("flowers_baseline", 5, 224))
    assert sum(param.numel() for param in model.parameters()) == 207_175_365


# the registered architectures that copy a torchvision model, and the arguments that build torchvision's own
TORCHVISION_TWINS = {"resnet18": (torchvision.models.resnet18, {}),
                     "mobilenet_v2": (torchvision.models.mobilenet_v2, {})}


@pytest.mark.parametrize("arch", sorted(TORCHVISION_TWINS))
def test_a_torchvision_twin_loads_torchvisions_checkpoint_and_computes_the_same(arch):
    build_reference, arguments = TORCHVISION_TWINS[arch]
    reference = build_reference(weights=None, num_classes=5, **arguments).eval()
    with torch.no_grad():  # non-trivial BatchNorm statistics, so the check covers them too
        for module in reference.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    spec = build_spec(arch, 5, 64)
    model = build_model(spec)
    model.load_state_dict(reference.state_dict(), strict=True)  # same names, nothing missing or extra
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in reference.parameters())

    images = np.random.default_rng(1).uniform(0, 255, (3, 64, 64, 3)).astype(np.float32)
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = reference((torch.from_numpy(images).permute(0, 3, 1, 2) / 255 - mean) / std).numpy()
    within, difference, bound = compare(predict_logits(model, images, 3), expected, "same_weights")
    assert within, f"{arch} differs from torchvision by {difference:.3g} (bound {bound:.3g})"

    # ... and back: a one-process model's state_dict is a torchvision checkpoint, computing the same logits
    returned = build_reference(weights=None, num_classes=5, **arguments).eval()
    returned.load_state_dict(model.state_dict(), strict=True)
    with torch.no_grad():
        round_trip = returned((torch.from_numpy(images).permute(0, 3, 1, 2) / 255 - mean) / std).numpy()
    np.testing.assert_array_equal(round_trip, expected)


# cnnlab's own modules in a one-process model; everything else is torch's, so tools that match layers by exact type
# (converters such as nobuco) know every layer.
CNNLAB_MODULES = (SpecModel, ResidualModule, NormalizeNHWC)


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_a_one_process_model_has_torchs_own_batchnorm_and_layers(arch):
    model = build_model(build_spec(arch, 5, small_image_size(arch)))
    for name, module in model.named_modules():
        assert not isinstance(module, SyncedBatchNorm2d), name
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            assert type(module) is torch.nn.BatchNorm2d, f"{name}: {type(module)}"
        if type(module) not in CNNLAB_MODULES:
            assert type(module).__module__.startswith("torch.nn."), f"{name}: {type(module)}"


def _with_statistics(model: torch.nn.Module) -> torch.nn.Module:
    """Non-trivial BatchNorm parameters and statistics, so a conversion that dropped any of them shows."""
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                for tensor, low, high in ((module.weight, 0.5, 1.5), (module.bias, -0.5, 0.5),
                                          (module.running_mean, -0.5, 0.5), (module.running_var, 0.5, 2.0)):
                    tensor.copy_(torch.empty_like(tensor).uniform_(low, high, generator=generator))
                module.num_batches_tracked.fill_(7)
    return model


def test_conversion_to_synced_batchnorm_keeps_the_parameters_and_the_outputs():
    spec = build_spec("resnet18", 5, 64)
    model = _with_statistics(build_model(spec))
    model.bn1.momentum, model.layer1[0].bn1.eps = 0.3, 1e-3  # hyperparameters that differ between layers
    model.layer2[0].downsample[1].eval()  # a mode of its own, kept
    before = {name: type(module) for name, module in model.named_modules()}
    settings = {name: (module.eps, module.momentum, module.affine, module.track_running_stats, module.training)
                for name, module in model.named_modules() if isinstance(module, torch.nn.BatchNorm2d)}
    parameters, buffers = dict(model.named_parameters()), dict(model.named_buffers())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)  # made before: it must still train the model
    images = np.random.default_rng(2).uniform(0, 255, (2, 64, 64, 3)).astype(np.float32)
    expected = predict_logits(model, images, 2)
    model.train()
    model.layer2[0].downsample[1].eval()

    assert SyncedBatchNorm2d.convert_synced_batchnorm(model) is model
    after = {name: type(module) for name, module in model.named_modules()}
    assert after.keys() == before.keys()
    assert {name for name, kind in before.items() if kind is torch.nn.BatchNorm2d} == settings.keys()
    assert all(after[name] is SyncedBatchNorm2d for name in settings), "every BatchNorm2d converted"
    assert all(after[name] is kind for name, kind in before.items() if name not in settings), "nothing else"
    for name in settings:
        module = model.get_submodule(name)
        assert (module.eps, module.momentum, module.affine, module.track_running_stats, module.training) \
            == settings[name], name
    # the same objects, not copies: the optimizer and anything else that held them before still do
    assert dict(model.named_parameters()).keys() == parameters.keys()
    assert all(param is parameters[name] for name, param in model.named_parameters())
    assert dict(model.named_buffers()).keys() == buffers.keys()
    assert all(buffer is buffers[name] for name, buffer in model.named_buffers())
    assert not any(tensor.is_meta for tensor in [*model.parameters(), *model.buffers()])
    assert optimizer.param_groups[0]["params"] == list(model.parameters())
    np.testing.assert_array_equal(predict_logits(model, images, 2), expected)

    alone = torch.nn.BatchNorm2d(4)
    assert type(SyncedBatchNorm2d.convert_synced_batchnorm(alone)) is SyncedBatchNorm2d


def test_a_model_built_for_several_processes_has_synced_batchnorm_and_freezes_it(monkeypatch):
    monkeypatch.setattr(cnnlab_torch.model, "current_world", lambda: World(rank=0, size=2))
    spec = build_spec("resnet18", 5, 64)
    model = build_model(spec)
    kinds = {type(module) for module in model.modules()}
    assert SyncedBatchNorm2d in kinds and torch.nn.BatchNorm2d not in kinds
    freeze(model, spec, ("fc.",))
    in_model = {id(module) for module in model.modules()}
    assert len(model.frozen_batchnorms) == 20  # ResNet-18's BatchNorms, every one in the model itself
    assert all(id(module) in in_model and type(module) is SyncedBatchNorm2d for module in model.frozen_batchnorms)
    model.train()
    assert not any(module.training for module in model.frozen_batchnorms)


@pytest.mark.parametrize("kind", list(SAMPLES), ids=lambda kind: kind.__name__)
def test_each_layer_type_becomes_a_module_with_the_spec_s_output_shape(kind):
    layer, shape = SAMPLES[kind]
    module = cnnlab_torch.model.to_module(layer)
    output = module(torch.rand(2, *shape) * (255 if kind is Normalize else 1))
    assert tuple(output.shape[1:]) == layer_output_shape(layer, shape)


def test_a_layer_type_outside_the_union_has_no_module():
    assert missing_rules("PyTorch module", get_args(Layer)) == []
    with pytest.raises(TypeError, match="no PyTorch module rule for layer type Dropout"):
        cnnlab_torch.model.to_module(Dropout())


def test_several_processes_refuse_a_model_with_unsynced_batchnorm(monkeypatch):
    import cnnlab_torch.distributed
    model = build_model(build_spec("cifar_improved", 5, 8))  # one process: torch's BatchNorm2d
    monkeypatch.setattr(cnnlab_torch.distributed.dist, "is_initialized", lambda: True)  # as after torchrun's join
    with pytest.raises(RuntimeError, match="bn0, ...\\) are not synchronised"):
        cnnlab_torch.distributed.parallel(model)
