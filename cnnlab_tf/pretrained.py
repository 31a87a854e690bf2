"""Porting torchvision's ResNet-18 checkpoint to the neutral weights format, for the TensorFlow backend.

Reading a ``.pth`` needs PyTorch, and one process should not load both frameworks (they bundle clashing LLVMs,
it segfaults), so the port runs ``cnnlab_torch.pretrained`` in a child process. It happens once per checkpoint:
afterwards both backends read the same ``.npz``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from shared.util.errors import UsageError


def port_checkpoint(checkpoint: Path, neutral: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "cnnlab_torch.pretrained", str(checkpoint), str(neutral)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines() or ["no output"]
        raise UsageError(lines[-1].removeprefix("cnnlab_torch.pretrained: error: "))
