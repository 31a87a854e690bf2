"""Filesystems mounted for a test: a small tmpfs (a full disk), a read-only bind mount (a read-only folder)."""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

import pytest


@contextlib.contextmanager
def mounted(kind: str, target: Path, *options: str):
    """A filesystem mounted at ``target`` for the block; the test is skipped where mounting is not allowed."""
    target.mkdir(parents=True, exist_ok=True)
    mount = subprocess.run(["mount", *options, target], capture_output=True, text=True)
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a {kind} here ({mount.stderr.strip() or 'mount failed'}); needs root or "
                    f"CAP_SYS_ADMIN")
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", target], check=False)


@contextlib.contextmanager
def read_only(folder: Path):
    """``folder`` read-only for the block, even to root (a read-only bind mount of itself)."""
    with mounted("read-only bind mount", folder, "--bind", "-o", "ro", folder):
        subprocess.run(["mount", "-o", "remount,ro,bind", folder], check=False)
        yield folder
