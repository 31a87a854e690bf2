"""The parity checks catch the classic porting bugs: each test plants one and expects the check to fail."""

import keras
import pytest

import cnnlab_tf.model
import cnnlab_tf.weights
from parity_tests.pairs import assert_agree, assert_layers_agree, build_pair, random_images, train_both
from shared.model import layout


def test_missing_flatten_permutation_is_caught_at_the_first_linear(monkeypatch):
    # Keras flattens (H, W, C); loading the Linear weight without reordering its inputs is the classic bug.
    monkeypatch.setattr(cnnlab_tf.weights, "dense_to_keras", lambda weight, flattened_chw=None:
                        layout.dense_to_keras(weight))
    pair = build_pair("cifar_cnn_max")
    torch_layers, keras_layers = pair.layer_outputs(random_images(pair.spec, 7, seed=2))
    with pytest.raises(AssertionError, match="layer 'fc'"):
        assert_layers_agree(torch_layers, keras_layers, "same_weights", "wrong flatten permutation")


def test_keras_same_padding_is_caught_at_the_strided_conv(monkeypatch):
    # padding="same" with stride 4 pads bottom/right only: same 8x8 shape as PyTorch's pad 2, other numbers.
    monkeypatch.setattr(cnnlab_tf.model, "conv_padding", lambda layer, name: ([], "same"))
    pair = build_pair("cifar_cnn_max")
    torch_layers, keras_layers = pair.layer_outputs(random_images(pair.spec, 7, seed=3))
    assert keras_layers["conv1"].shape == torch_layers["conv1"].shape, "the bug keeps shapes, so only values tell"
    with pytest.raises(AssertionError, match="layer 'conv1'"):
        assert_layers_agree(torch_layers, keras_layers, "same_weights", "same padding")


def test_batchnorm_statistics_swapped_is_caught(monkeypatch):
    # Loading moving_mean and moving_variance in the wrong order: shapes fit, numbers do not.
    monkeypatch.setattr(cnnlab_tf.weights, "_BATCHNORM_KINDS", ("weight", "bias", "running_var", "running_mean"))
    pair = build_pair("resnet18")
    torch_layers, keras_layers = pair.layer_outputs(random_images(pair.spec, 2, seed=4))
    with pytest.raises(AssertionError, match="layer 'bn1'"):
        assert_layers_agree(torch_layers, keras_layers, "same_weights", "swapped BatchNorm statistics")


def _check_steps(arch: str, **bug) -> None:
    before, torch_after, keras_after = train_both(arch, **bug)
    for name in before:
        assert_agree(keras_after[name], torch_after[name], "trained_steps", f"{arch} {name}", "64-true")


def test_keras_own_adam_is_caught():
    # Equal hyperparameters, Keras's update rule: epsilon is added before sqrt(v) is bias-corrected.
    def stock_adam(model, config):
        return keras.optimizers.Adam(config.lr, config.beta1, config.beta2, config.eps)

    with pytest.raises(AssertionError, match="cifar_cnn_max"):
        _check_steps("cifar_cnn_max", keras_optimizer=stock_adam)


def test_keras_biased_moving_variance_is_caught(monkeypatch):
    # Keras's BatchNormalization folds the biased batch variance into its moving variance; PyTorch the unbiased one.
    monkeypatch.setattr(cnnlab_tf.model, "TorchBatchNormalization", keras.layers.BatchNormalization)
    with pytest.raises(AssertionError, match="running_var"):
        _check_steps("resnet18")
