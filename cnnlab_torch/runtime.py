"""PyTorch's phone format, ExecuTorch files (``.pte``), in ExecuTorch's own runtime, as a phone runs them (XNNPACK on
the CPU); ``cnnlab_tf.runtime`` mirrors it for LiteRT.

The runner is ``shared.formats.runtimes.Runner``'s, like ONNX's and LiteRT's; it lives here because ExecuTorch's
Python runtime takes and returns torch tensors, and ``shared`` never imports a framework.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from collections.abc import Iterator

import numpy as np

from shared.formats.runtimes import FORMATS, Runner, missing_runtime
from shared.util.native_stderr import filtered

# What ExecuTorch's runtime prints to fd 2 when it probes the CPU on x86 machines (it looks for ARM's MIDR files) and
# sets its thread pool
EXECUTORCH_NOTES = ("cpuinfo_utils.cpp", "Resetting threadpool to")


@contextlib.contextmanager
def quiet_executorch() -> Iterator[None]:
    """ExecuTorch's start-up notes filtered out. Importing it loads torchao, which registers an Enum as a pytree
    constant; torch 2.14 logs a deprecation warning for that through its own logger (torch.utils._pytree), a note
    for torchao's authors, not for a user exporting a model."""
    pytree_log = logging.getLogger("torch.utils._pytree")
    level = pytree_log.level
    pytree_log.setLevel(logging.ERROR)
    try:
        with filtered(EXECUTORCH_NOTES):
            yield
    finally:
        pytree_log.setLevel(level)


def mobile_runner(path: Path, threads: int = 1) -> Runner:
    """A ``.pte`` program's ``forward`` method, with ``threads`` threads in XNNPACK's pool (one pool per process: the
    last runner opened sets it). Its batch dimension is bounded by the memory it was planned with, which
    ``Runner.max_batch`` holds."""
    import importlib.metadata

    import torch

    with quiet_executorch():
        try:
            from executorch.extension.pybindings import portable_lib
            from executorch.runtime import Runtime, Verification
        except ImportError as error:
            raise missing_runtime(FORMATS["executorch"], error) from None
        portable_lib._unsafe_reset_threadpool(threads)  # the only thread setting ExecuTorch's Python API has
        program = Runtime.get().load_program(Path(path), verification=Verification.Minimal)
        method = program.load_method("forward")
    bound = method.metadata.input_tensor_meta(0).sizes()
    classes = method.metadata.output_tensor_meta(0).sizes()[1]

    probed = [False]

    def run_batch(images: np.ndarray) -> np.ndarray:
        if probed[0]:
            return method.execute([torch.from_numpy(images)])[0].numpy()
        with filtered(EXECUTORCH_NOTES):  # the CPU probe runs on the first call only
            probed[0] = True
            return method.execute([torch.from_numpy(images)])[0].numpy()

    return Runner(FORMATS["executorch"], Path(path), int(bound[1]), int(classes),
                  f"executorch {importlib.metadata.version('executorch')}", threads, int(bound[0]), run_batch)
