"""Keras's phone format, LiteRT files (``.tflite``), in ai-edge-litert's interpreter; mirrors
``cnnlab_torch.runtime`` for ExecuTorch. The interpreter needs no TensorFlow, so the runner itself is
``shared.formats.runtimes.litert_runner``."""

from __future__ import annotations

from pathlib import Path

from shared.formats.runtimes import Runner, litert_runner


def mobile_runner(path: Path, threads: int = 1) -> Runner:
    """A ``.tflite`` file in the LiteRT interpreter with ``threads`` threads (XNNPACK on the CPU)."""
    return litert_runner(path, threads)
