"""Loaded by pytest before any test module, so it fixes the import order for the whole session.

torch, then tensorflow, then anything that imports triton (torch.export, the ONNX exporter) segfaults while loading
libtriton: both bundle LLVM (parity-pitfalls.md). Importing torch and triton first, before any test module can
import tensorflow, avoids it.
"""

import os

# pytest-xdist runs the suite in several worker processes (pyproject.toml: -n 2). Each gets its share of the cores,
# set before any framework loads and inherited by the training runs it starts: two workers of two threads each on
# two cores wait on each other, and PyTorch's OpenMP threads then slow a run down several times (speed-and-scale).
# TensorFlow's inter-op pool keeps its default: collectives across replicas need two threads at once.
if os.environ.get("PYTEST_XDIST_WORKER"):
    threads = str(max(1, (os.cpu_count() or 1) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))))
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS"):
        os.environ.setdefault(variable, threads)

import pytest  # noqa: E402
import torch  # noqa: F401,E402

try:
    import triton  # noqa: F401
except ImportError:  # a torch build without triton has nothing to clash with
    pass

# The shared test helpers assert on run directories; rewriting their asserts makes a failure show the values.
pytest.register_assert_rewrite("tests.support.helpers")
