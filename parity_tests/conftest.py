"""Fixtures of the parity suite. Both frameworks share its process, imported in the one safe order."""

import parity_tests.frameworks  # noqa: F401  (first: the import order of torch, triton and tensorflow)

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
