"""Layout conversions checked against the operation they stand for, computed directly in NumPy."""

import numpy as np

from shared.model.layout import (activation_to_canonical, conv_kernel_from_hwio, conv_kernel_to_hwio, dense_from_keras,
                                 dense_to_keras)


def test_permuted_dense_on_nhwc_flatten_equals_linear_on_nchw_flatten():
    rng = np.random.default_rng(0)
    feature_map = rng.normal(size=(4, 3, 5))  # (C, H, W)
    weight = rng.normal(size=(6, 60))  # PyTorch Linear, inputs in (C, H, W) order
    torch_style = weight @ feature_map.reshape(-1)
    keras_style = feature_map.transpose(1, 2, 0).reshape(-1) @ dense_to_keras(weight, (4, 3, 5))
    np.testing.assert_allclose(keras_style, torch_style, rtol=1e-12)


def test_without_the_permutation_the_flattened_dense_is_wrong():
    rng = np.random.default_rng(1)
    feature_map, weight = rng.normal(size=(4, 3, 5)), rng.normal(size=(6, 60))
    unpermuted = feature_map.transpose(1, 2, 0).reshape(-1) @ dense_to_keras(weight)
    assert np.abs(unpermuted - weight @ feature_map.reshape(-1)).max() > 1e-3


def test_dense_round_trip():
    weight = np.random.default_rng(2).normal(size=(6, 60))
    np.testing.assert_array_equal(dense_from_keras(dense_to_keras(weight, (4, 3, 5)), (4, 3, 5)), weight)
    np.testing.assert_array_equal(dense_from_keras(dense_to_keras(weight)), weight)


def test_conv_kernel_layouts():
    kernel = np.random.default_rng(3).normal(size=(8, 3, 5, 2))  # (out, in, kh, kw)
    hwio = conv_kernel_to_hwio(kernel)
    assert hwio.shape == (5, 2, 3, 8) and hwio[4, 1, 2, 7] == kernel[7, 2, 4, 1]
    np.testing.assert_array_equal(conv_kernel_from_hwio(hwio), kernel)


def test_activation_to_canonical():
    nhwc = np.zeros((2, 5, 6, 3))
    assert activation_to_canonical(nhwc).shape == (2, 3, 5, 6)
    assert activation_to_canonical(np.zeros((2, 10))).shape == (2, 10)


def test_keras_flatten_output_reordered_to_pytorch_order():
    feature_map = np.random.default_rng(4).normal(size=(2, 4, 3, 5))  # (N, C, H, W)
    keras_flat = feature_map.transpose(0, 2, 3, 1).reshape(2, -1)
    np.testing.assert_array_equal(activation_to_canonical(keras_flat, (4, 3, 5)), feature_map.reshape(2, -1))
