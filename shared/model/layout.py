"""Every layout permutation between the canonical (PyTorch, channels-first) layout and an NHWC backend's.

One home for each conversion: the Keras backend calls these and nothing else transposes weights or activations.
"""

from __future__ import annotations

import numpy as np


def conv_kernel_to_hwio(kernel: np.ndarray) -> np.ndarray:
    """(out, in, kh, kw) -> (kh, kw, in, out), the layout of a Keras ``Conv2D`` kernel."""
    return np.ascontiguousarray(kernel.transpose(2, 3, 1, 0))


def conv_kernel_from_hwio(kernel: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))


def depthwise_kernel_to_keras(kernel: np.ndarray) -> np.ndarray:
    """(channels, 1, kh, kw) -> (kh, kw, channels, 1), the layout of a Keras ``DepthwiseConv2D`` kernel."""
    return np.ascontiguousarray(kernel.transpose(2, 3, 0, 1))


def depthwise_kernel_from_keras(kernel: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(kernel.transpose(2, 3, 0, 1))  # the same swap of axis pairs undoes itself


def _flatten_order_chw_to_hwc(chw: tuple[int, int, int]) -> np.ndarray:
    """Index map: position ``i`` of an HWC-flattened vector holds element ``order[i]`` of the CHW-flattened one."""
    channels, height, width = chw
    return np.arange(channels * height * width).reshape(channels, height, width).transpose(1, 2, 0).reshape(-1)


def dense_to_keras(weight: np.ndarray, flattened_chw: tuple[int, int, int] | None = None) -> np.ndarray:
    """(out, in) -> (in, out). If the Linear is fed by a Flatten of a (C, H, W) map, reorder its inputs, because
    PyTorch flattens NCHW as (C, H, W) and Keras flattens NHWC as (H, W, C)."""
    if flattened_chw is not None:
        weight = weight[:, _flatten_order_chw_to_hwc(flattened_chw)]
    return np.ascontiguousarray(weight.T)


def dense_from_keras(kernel: np.ndarray, flattened_chw: tuple[int, int, int] | None = None) -> np.ndarray:
    weight = kernel.T
    if flattened_chw is not None:
        restored = np.empty_like(weight)
        restored[:, _flatten_order_chw_to_hwc(flattened_chw)] = weight
        weight = restored
    return np.ascontiguousarray(weight)


def activation_to_canonical(array: np.ndarray, flattened_chw: tuple[int, int, int] | None = None) -> np.ndarray:
    """An NHWC activation -> NCHW. A Keras Flatten output is in (H, W, C) order: given the (C, H, W) map it came
    from, it is reordered to PyTorch's (C, H, W) order. Anything else is already canonical."""
    if array.ndim == 4:
        return array.transpose(0, 3, 1, 2)
    if flattened_chw is not None:
        canonical = np.empty_like(array)
        canonical[:, _flatten_order_chw_to_hwc(flattened_chw)] = array
        return canonical
    return array
