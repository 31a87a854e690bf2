"""What a path is, in words, when a command needed a regular file or a folder there and found something else."""

from __future__ import annotations

import stat
from pathlib import Path

_KINDS = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a folder"))


def kind_of(path: Path) -> str:
    """What an existing path that is not a regular file is: "a named pipe (FIFO)", "a folder", ..."""
    mode = Path(path).stat().st_mode
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def not_a_file(path: Path) -> str:
    """Why ``path`` cannot be read as a file, as a sentence's verb: "does not exist", "is a named pipe (FIFO)"."""
    return f"is {kind_of(path)}" if Path(path).exists() else "does not exist"
