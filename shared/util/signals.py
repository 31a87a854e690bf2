"""Ctrl-C and SIGTERM stop a run the same way. Notebook hosts and job schedulers send SIGTERM before they kill a
process; both become ``StopRequested`` (a ``KeyboardInterrupt``), which the runner turns into a clean stop that
keeps every finished epoch. Inside ``deferred()`` (while a checkpoint is being written) a stop waits until the block
ends, so a checkpoint is never left half-written by a signal.

A stop that arrives while a C extension initialises (onnxruntime's, imported at a run's first export) reaches Python
as that module's ImportError ("initialization failed", "import numpy failed"), often with the stop lost from its
chain. So the handler remembers the stop it raised: ``stops_kept()`` raises it again in place of an ImportError
that ends its block, and code that would turn an ImportError into advice asks ``raise_if_requested()`` first."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

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
_raised: StopRequested | None = None  # the stop the handler raised inside the current stop_requests() block


def _handler(signal_number, frame):
    global _pending, _raised
    if _deferring:
        _pending = signal_number
        return
    _raised = StopRequested(signal_number)
    raise _raised


@contextlib.contextmanager
def stop_requests() -> Iterator[None]:
    """SIGINT and SIGTERM raise ``StopRequested`` inside the block; the previous handlers come back after it. An
    error that ends the block after a stop is raised as that stop (``stops_kept``)."""
    global _raised
    if threading.current_thread() is not threading.main_thread():  # signals are only delivered to the main thread
        yield
        return
    previous = {number: signal.signal(number, _handler) for number in (signal.SIGINT, signal.SIGTERM)}
    _raised = None
    try:
        with stops_kept():
            yield
    finally:
        _raised = None
        for number, handler in previous.items():
            signal.signal(number, handler)


def _stop_behind(error: BaseException) -> StopRequested | None:
    """The stop raised in this ``stop_requests()`` block if ``error`` comes from it: the stop is in its chain, or it
    is an ImportError, which an extension's initialisation raises with the stop often dropped. An error after a
    stop that was already handled (the files of a stopped run could not be written) stays what it is."""
    if _raised is None:
        return None
    if isinstance(error, ImportError):
        return _raised
    seen: set[int] = set()
    link: BaseException | None = error
    while link is not None and id(link) not in seen:
        if link is _raised:
            return _raised
        seen.add(id(link))
        link = link.__cause__ or link.__context__
    return None


def raise_if_requested(error: BaseException) -> None:
    """Raise the stop requested in this ``stop_requests()`` block in place of ``error``, if it comes from it."""
    stop = _stop_behind(error)
    if stop is not None:
        raise stop from error


@contextlib.contextmanager
def stops_kept() -> Iterator[None]:
    """An error that ends the block because of a stop is raised as that stop, so the caller's ``except
    KeyboardInterrupt`` ends the run as stopped, not as crashed."""
    try:
        yield
    except Exception as error:
        raise_if_requested(error)
        raise


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """A stop requested inside the block is raised when the block ends."""
    global _deferring, _pending, _raised
    _deferring, _pending = True, None
    try:
        yield
    finally:
        _deferring = False
        if _pending is not None:
            _raised, _pending = StopRequested(_pending), None
            raise _raised


def exit_status(error: KeyboardInterrupt) -> int:
    return error.exit_status if isinstance(error, StopRequested) else EXIT_INTERRUPTED
