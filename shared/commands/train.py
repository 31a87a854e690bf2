"""The train command, ``python -m cnnlab_<framework>.train``: the parsed flags handed to the runner
(``shared.run.runner.execute``), and every mistake the user can fix as one line and exit status 2."""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable

from shared.commands.cli import build_parser, parse_or_exit
from shared.run.runner import execute
from shared.training.backend import Backend
from shared.util import signals
from shared.util.errors import EXIT_USAGE, UsageError
from shared.util.timings import PROCESS_START


def command_line(framework: str, load_backend: Callable[[], Backend]) -> int:
    """``python -m cnnlab_<framework>.train``: ``main`` as a process of its own, which loads one framework, trains
    one run and exits. Its ``timings`` count from the moment the entry point loaded."""
    try:
        return main(framework, one_process_load(load_backend), started=PROCESS_START)
    finally:
        gc.freeze()  # the process ends now: its files are closed, and the collector need not walk every object


def main(framework: str, load_backend: Callable[[], Backend], argv: list[str] | None = None,
         started: float | None = None) -> int:
    """The command line: one line and exit status 2 for anything the user can fix, no traceback. ``started``: as
    ``execute`` takes it."""
    prog = f"cnnlab_{framework}.train"
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_or_exit(build_parser(prog), argv)
    try:
        return execute(framework, load_backend, args, argv, started).exit_status
    except UsageError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as stop:
        print(f"\n{prog}: stopped during start-up, before training began: nothing was trained, and nothing new "
              f"was kept", file=sys.stderr)
        return signals.exit_status(stop)


def one_process_load(load_backend: Callable[[], Backend]) -> Callable[[], Backend]:
    """``load_backend`` for a process that trains one run and exits: the garbage collector paused while the
    framework's millions of objects are created, and those objects left out of every later collection
    (``gc.freeze``). Measured for torch with the torch._dynamo its optimizer loads: the import 1.6 s instead of
    2.1 s, and the process's exit 0.8 s shorter. Not for the API or for ``main`` called in a process that goes on
    (a notebook, the tests): objects frozen there are never freed."""

    def load() -> Backend:
        gc.disable()
        try:
            return load_backend()
        finally:
            gc.freeze()
            gc.enable()

    return load
