"""Tests that hold both backends to the same checks: each test runs once per backend, with ids ``[torch]`` and
``[tf]``. The root conftest.py has already imported torch and triton, so importing TensorFlow here is safe."""

import importlib

import pytest

FRAMEWORKS = ("torch", "tf")


@pytest.fixture(scope="module", params=FRAMEWORKS)
def backend(request):
    """The backend as the runner sees it (``shared.training.backend.Backend``)."""
    return importlib.import_module(f"cnnlab_{request.param}.backend").BACKEND
