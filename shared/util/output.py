"""A command's stdout going to a reader that stops early (``predict ... | head -2``): the pipe closes, the next write
raises ``BrokenPipeError``, and Python would print a traceback, then another one as it flushes stdout on exit. A
closed pipe ends a command quietly, as Unix tools end, with the status a shell reports for SIGPIPE."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator



class ClosedPipe(Exception):
    """stdout's reader is gone; nothing more can be shown."""


@contextlib.contextmanager
def closed_pipe_is_quiet() -> Iterator[None]:
    """Inside the block a ``BrokenPipeError`` on stdout becomes ``ClosedPipe``, with stdout pointed at /dev/null so
    that the interpreter's own flush at exit fails no more."""
    try:
        yield
        sys.stdout.flush()  # a reader that closed after the last print is found here, not in the exit's flush
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        raise ClosedPipe() from None
