"""Atomic file writes: write a ``.part`` sibling, then rename it over the target. A crash or Ctrl-C leaves the old
file or none, never half of one."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from collections.abc import Iterator


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on failure it is removed."""
    path = Path(path)
    part = path.with_name(f".part-{os.getpid()}-{path.name}")  # keeps the suffix, which some savers check
    try:
        yield part
        os.replace(part, path)
    finally:
        part.unlink(missing_ok=True)
