"""The one command-line parser of ``cnnlab_torch.train`` and ``cnnlab_tf.train``: the flags are identical because
they are defined once. Parsing imports no framework, so ``--help`` and bad flags answer at once."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from shared.run.options import RunOptions
from shared.training.config import TrainConfig
from shared.util import flags, signals
from shared.util.flags import OneLineParser, parse_or_exit  # noqa: F401 (the commands' parsers use them)
from shared.util.errors import EXIT_CLOSED_PIPE
from shared.util.output import ClosedPipe, closed_pipe_is_quiet


def run_command(prog: str, work: Callable[[], int], stopped: str = "") -> int:
    """The exit status of ``work()``, a command that uses a trained model, ended as every such command ends: Ctrl-C
    and SIGTERM as one line ("stopped" and ``stopped``, what happened to its output) and 130 or 143, a closed stdout
    (``| head``) quietly (``shared.util.output``)."""
    try:
        with signals.stop_requests(), closed_pipe_is_quiet():  # a stop during a runtime's import stays a stop
            return work()
    except KeyboardInterrupt as stop:
        print(f"\n{prog}: stopped{stopped}", file=sys.stderr)
        return signals.exit_status(stop)
    except ClosedPipe:
        return EXIT_CLOSED_PIPE


# The value parsers the other commands' flags share with train's
POSITIVE_WHOLE = flags.POSITIVE_WHOLE


def build_parser(prog: str) -> argparse.ArgumentParser:
    """The train command's parser: every flag declared in ``RunOptions`` and ``TrainConfig``."""
    parser = OneLineParser(prog=prog, allow_abbrev=False,
                           description="Train a cnnlab model, then save its checkpoint, neutral weights, ONNX "
                                       "export, metrics, curves and reports into a new run directory.")
    flags.add_flags(parser, RunOptions, TrainConfig)
    return parser


def flag_table() -> str:
    """The train command's flags as a Markdown table (the docs' flag reference, shared.tools.reference)."""
    return flags.flag_table(RunOptions, TrainConfig)


if __name__ == "__main__":  # python -m shared.commands.cli: print the flag table
    parse_or_exit(OneLineParser(prog="python -m shared.commands.cli",
                                description="Print the train command's flags as a Markdown table."), None)
    print(flag_table())
