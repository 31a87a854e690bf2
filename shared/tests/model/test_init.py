"""Initial weights: one seeded draw, PyTorch's default distributions."""

import numpy as np

from shared.model.init import initial_weights
from shared.model.registry import build_spec


def test_same_seed_same_weights_other_seed_other_weights():
    spec = build_spec("cifar_cnn_max", 10, 32)
    first, again, other = initial_weights(spec, 0), initial_weights(spec, 0), initial_weights(spec, 1)
    assert all(np.array_equal(first[name], again[name]) for name in first)
    assert not np.array_equal(first["conv1.weight"], other["conv1.weight"])


def test_pytorch_default_bounds_and_batchnorm_identity():
    weights = initial_weights(build_spec("resnet18", 5, 64), 0)
    fc_bound = 1 / np.sqrt(512)  # nn.Linear: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    assert np.abs(weights["fc.weight"]).max() <= fc_bound and np.abs(weights["fc.weight"]).max() > 0.9 * fc_bound
    assert (weights["bn1.weight"] == 1).all() and (weights["bn1.running_mean"] == 0).all()
    assert (weights["bn1.running_var"] == 1).all()
    conv1_std = np.sqrt(2 / (64 * 7 * 7))  # torchvision: kaiming_normal_, fan_out, relu
    assert abs(weights["conv1.weight"].std() - conv1_std) < 0.05 * conv1_std
    assert all(value.dtype == np.float32 for value in weights.values())
