"""Both frameworks in one process. Import order matters: torch, then triton, then tensorflow. TensorFlow first (or
triton after it) segfaults while loading libtriton, because both bundle LLVM (parity-pitfalls.md)."""

import torch  # noqa: F401

try:
    import triton  # noqa: F401
except ImportError:  # a torch build without triton has nothing to clash with
    pass

import cnnlab_tf  # noqa: F401,E402  (sets KERAS_BACKEND before keras loads)
import tensorflow  # noqa: F401,E402

import pytest  # noqa: E402

from parity_tests.pairs import ModelPair, build_pair  # noqa: E402


@pytest.fixture(scope="session")
def pairs():
    """arch -> the two frameworks' models of that spec holding identical weights, built once per session."""
    cache: dict[str, ModelPair] = {}

    def get(arch: str) -> ModelPair:
        if arch not in cache:
            cache[arch] = build_pair(arch)
        return cache[arch]

    return get


@pytest.fixture(scope="session")
def exports(pairs, tmp_path_factory):
    """arch -> (PyTorch ONNX path, Keras ONNX path), exported once per session."""
    cache: dict[str, tuple] = {}

    def get(arch: str):
        if arch not in cache:
            cache[arch] = pairs(arch).export(tmp_path_factory.mktemp(arch))
        return cache[arch]

    return get
