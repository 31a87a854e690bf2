"""Ctrl-C and SIGTERM stop a run the same way. Notebook hosts and job schedulers send SIGTERM before they kill a
process; both become ``StopRequested`` (a ``KeyboardInterrupt``), which the runner turns into a clean stop that
keeps every finished epoch. Inside ``deferred()`` (while a checkpoint is being written) a stop waits until the block
ends, so a checkpoint is never left half-written by a signal."""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator

from shared.util.errors import EXIT_INTERRUPTED, EXIT_TERMINATED


class StopRequested(KeyboardInterrupt):
    def __init__(self, signal_number: int):
        super().__init__(signal.Signals(signal_number).name)
        self.signal_number = signal_number

    @property
    def exit_status(self) -> int:
        return EXIT_TERMINATED if self.signal_number == signal.SIGTERM else EXIT_INTERRUPTED


_deferring = False
_pending: int | None = None


def _handler(signal_number, frame):
    global _pending
    if _deferring:
        _pending = signal_number
        return
    raise StopRequested(signal_number)


@contextlib.contextmanager
def stop_requests() -> Iterator[None]:
    """SIGINT and SIGTERM raise ``StopRequested`` inside the block; the previous handlers come back after it."""
    if threading.current_thread() is not threading.main_thread():  # signals are only delivered to the main thread
        yield
        return
    previous = {number: signal.signal(number, _handler) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """A stop requested inside the block is raised when the block ends."""
    global _deferring, _pending
    _deferring, _pending = True, None
    try:
        yield
    finally:
        _deferring = False
        if _pending is not None:
            number, _pending = _pending, None
            raise StopRequested(number)


def exit_status(error: KeyboardInterrupt) -> int:
    return error.exit_status if isinstance(error, StopRequested) else EXIT_INTERRUPTED
