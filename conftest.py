"""Loaded by pytest before any test module, so it fixes the import order for the whole session.

torch, then tensorflow, then anything that imports triton (torch.export, the ONNX exporter) segfaults while loading
libtriton: both bundle LLVM (parity-pitfalls.md). Importing torch and triton first, before any test module can
import tensorflow, avoids it.
"""

import pytest
import torch  # noqa: F401

try:
    import triton  # noqa: F401
except ImportError:  # a torch build without triton has nothing to clash with
    pass

# The shared test helpers assert on run directories; rewriting their asserts makes a failure show the values.
pytest.register_assert_rewrite("tests.helpers")
