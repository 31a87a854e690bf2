"""Loaded by pytest before any test module, so it fixes the import order for the whole session.

torch, then tensorflow, then anything that imports triton (torch.export, the ONNX exporter) segfaults while loading
libtriton: both bundle LLVM. Importing torch and triton first, before any test module can
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

# The slowest test files, slowest first (seconds in one run of the whole suite on 2 cores, --durations=0; in
# brackets, in the Colab stack's part of .ci/run). With --dist loadfile, xdist hands whole files to the workers in
# collection order; a slow file handed out last keeps one worker busy while the other waits. Handing them out first
# lets the many short files fill in around them. A file not listed keeps its place, after these.
SLOWEST_FILES = (
    "tests/test_distributed.py",  # 110 s
    "tests/test_train.py",  # 80 s, MobileNetV2 at 224 px in both frameworks the most
    "parity_tests/test_mobile_exports.py",  # 70 s (40 s: no ExecuTorch there)
    "tests/test_resume.py",  # 56 s
    "tests/test_feature_cache.py",  # 52 s
    "tests/test_notebooks.py",  # 51 s (Colab's stack: 46 s)
    "parity_tests/test_training.py",  # 42 s (50 s)
    "shared/tests/commands/test_bench.py",  # 35 s, one test
    "tests/test_experiments.py",  # 30 s
    "parity_tests/test_improved_training.py",  # 30 s (31 s)
    "parity_tests/test_compare.py",  # 23 s (22 s)
    "parity_tests/test_cross_resume.py",  # 21 s (21 s)
    "tests/test_distributed_faults.py",  # 17 s
    "tests/test_improved.py",  # 16 s
    "tests/test_api.py",  # 15 s
    "tests/test_export.py",  # 14 s
    "parity_tests/test_noise_floor.py",  # 13 s (15 s)
    "parity_tests/test_onnx_opsets.py",  # 8 s (11 s)
)


def pytest_collection_modifyitems(config, items):
    rank = {path: index for index, path in enumerate(SLOWEST_FILES)}
    root = config.rootpath
    items.sort(key=lambda item: rank.get(item.path.relative_to(root).as_posix(), len(rank)))  # stable: in-file order kept
