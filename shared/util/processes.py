"""Child processes that never outlive the command that started them: the benchmark's and compare's workers, and the
servers the serve benchmark measures."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator

from shared.util import signals


@contextlib.contextmanager
def process_group(command: list[str], **popen) -> Iterator[subprocess.Popen]:
    """``command`` started in a process group of its own. Whatever ends the block early (Ctrl-C, SIGTERM as a
    ``StopRequested``, any error), the whole group is killed first, so nothing it started is left behind; a block
    that ends normally leaves the process to the caller."""
    process = None
    try:
        # A stop while the process starts waits until its pid is known (Popen does not kill a child it was starting)
        with signals.deferred():
            process = subprocess.Popen(command, start_new_session=True, **popen)
        yield process
    except BaseException:
        if process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        raise
