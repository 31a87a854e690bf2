"""Keras models from the registry's specs: shapes, counts and weight loading follow the spec."""

import numpy as np
from typing import get_args

import pytest

import cnnlab_tf.model
import cnnlab_tf.weights
import keras
from cnnlab_tf.model import build_model, predict_logits
from shared.model import shapes
from shared.model.registry import ARCHITECTURES, build_spec
from shared.model.specs import Normalize
from tests.support.helpers import check_model_follows_spec, small_image_size
from shared.model.specs import Layer
from tests.support.layers import SAMPLES, Dropout, missing_rules


def small_spec(arch: str, classes: int = 5):
    return build_spec(arch, classes, small_image_size(arch))


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_model_follows_the_spec(arch):
    check_model_follows_spec(cnnlab_tf.model, cnnlab_tf.weights, arch)


def test_batchnorm_statistics_are_not_trainable():
    spec = small_spec("resnet18")
    model = build_model(spec)
    non_trainable = sum(int(np.prod(weight.shape)) for weight in model.non_trainable_weights)
    expected = sum(int(np.prod(p.shape)) for p in shapes.parameters(spec) if not p.trainable)
    assert non_trainable == expected, "Keras keeps running statistics as non-trainable weights"


def test_max_pool_pads_with_minus_infinity():
    # A 3x3/2 max-pool with padding 1 on an all-negative map must return negatives, as PyTorch does;
    # zero padding would put zeros on the border.
    from cnnlab_tf.model import _apply
    from shared.model.specs import MaxPool2d

    inputs = keras.Input((4, 4, 1))
    pooled = keras.Model(inputs, _apply(MaxPool2d(3, 2, 1), "pool", inputs))
    result = np.asarray(pooled(-np.arange(1, 17, dtype=np.float32).reshape(1, 4, 4, 1)))
    np.testing.assert_array_equal(result[0, :, :, 0], [[-1, -2], [-5, -6]])  # zeros: [[0, 0], [0, -6]]


def test_predict_logits_accepts_uint8_batches():
    spec = small_spec("cifar_cnn_max")
    model = build_model(spec)
    images = np.random.default_rng(1).integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    assert predict_logits(model, images, 2).shape == (5, 5)


def _keras_shape(canonical: tuple[int, ...]) -> tuple[int, ...]:
    """A canonical (C, H, W) shape as Keras holds it, (H, W, C); features as they are."""
    return canonical if len(canonical) == 1 else (*canonical[1:], canonical[0])


@pytest.mark.parametrize("kind", list(SAMPLES), ids=lambda kind: kind.__name__)
def test_each_layer_type_becomes_keras_layers_with_the_spec_s_output_shape(kind):
    layer, shape = SAMPLES[kind]
    inputs = keras.Input(shape if kind is Normalize else _keras_shape(shape))  # Normalize takes the NHWC input
    output = cnnlab_tf.model._apply(layer, "sample", inputs)
    assert tuple(output.shape[1:]) == _keras_shape(shapes.layer_output_shape(layer, shape))


def test_a_layer_type_outside_the_union_has_no_keras_layer():
    import cnnlab_tf.weights

    assert missing_rules("Keras layer", get_args(Layer)) == []
    assert missing_rules("Keras variables", get_args(Layer)) == []
    with pytest.raises(TypeError, match="no Keras layer rule for layer type Dropout"):
        cnnlab_tf.model._apply(Dropout(), "drop", keras.Input((8, 8, 3)))
    with pytest.raises(TypeError, match="no Keras variables rule for layer type Dropout"):
        cnnlab_tf.weights.layer_variables(Dropout(), [], None)
