"""The errors a user can cause, and how a run can end without finishing. This module imports nothing from the
project, so any module (a data reader, a download, the weights code, a backend) can raise them without pulling in
the command line or the experiments.

A ``UsageError`` is printed as one line (what was wrong, what was expected, what to do), with exit status 2 and no
traceback. Its kinds let a caller (or a test) tell a bad file from a bad flag without reading the message.
"""

from __future__ import annotations

import signal


class UsageError(Exception):
    """A mistake the user can fix: printed as one line, exit status 2, no traceback."""


class FlagError(UsageError):
    """A flag (or a keyword of the Python API) with a value the parser refuses."""


class DataError(UsageError):
    """Data that is missing, damaged or not in the expected format."""


class DownloadError(DataError):
    """A download that could not be completed; the message says what to do instead."""


class WeightsError(UsageError, ValueError):
    """A weights or checkpoint file that cannot be used for the requested model."""


class RunDirError(UsageError):
    """A run directory that cannot be created, read, resumed or compared as asked."""


class Diverged(Exception):
    """The training loss stopped being a finite number. Not a usage error: the flags were valid, the run failed."""

    def __init__(self, epoch: int, batch: int, batches: int, loss: float):
        self.epoch, self.batch, self.batches, self.loss = epoch, batch, batches, loss
        where = f"epoch {epoch}, batch {batch} of {batches}" if batch else f"epoch {epoch}, validation"
        super().__init__(f"the loss became {loss} at {where}")


class PeerLost(Exception):
    """Another process of a distributed run left it (stopped, or its machine went away) while this one waited for
    it in a collective. Not a usage error: this process's own work was sound; the run stops as if interrupted."""


# Exit statuses of the commands; EXIT_STATUSES below says what each means (the docs' table is generated from it).
EXIT_OK, EXIT_NOT_REPRODUCED, EXIT_USAGE, EXIT_DIVERGED, EXIT_NOT_WRITTEN, EXIT_PEER_LOST = 0, 1, 2, 3, 4, 5
# export and predict: a file failed its check (nothing kept); some images could not be read (the rest predicted)
EXIT_CHECK_FAILED = EXIT_SOME_SKIPPED = 1
EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143  # 128 + SIGINT, 128 + SIGTERM, as shells report them
EXIT_CLOSED_PIPE = 128 + signal.SIGPIPE  # 141, what `cat file | head -1` leaves in PIPESTATUS for cat

# status -> what it means, for every command; the run's own status (metrics.json's "status") in brackets
EXIT_STATUSES: dict[int, str] = {
    EXIT_OK: "finished (evaluate: the accuracy was reproduced)",
    EXIT_NOT_REPRODUCED: "evaluate: the accuracy was not reproduced; export: the exported file failed its check and "
                         "was removed; predict: some images could not be read (they are named, the rest predicted)",
    EXIT_USAGE: "a usage error: a bad flag, missing or damaged data or model files, a run that cannot be resumed as "
                "asked; one line on stderr, nothing written",
    EXIT_DIVERGED: "train: the loss stopped being a finite number (status `diverged`)",
    EXIT_NOT_WRITTEN: "a file could not be written: a full or read-only disk (status `stopped`; the finished epochs "
                      "are kept)",
    EXIT_PEER_LOST: "train: another process of a distributed run left it while this one trained (status "
                    "`interrupted`; the finished epochs are kept)",
    EXIT_INTERRUPTED: "stopped by Ctrl-C, SIGINT (status `interrupted`; the finished epochs are kept)",
    EXIT_TERMINATED: "stopped by SIGTERM (status `interrupted`; the finished epochs are kept)",
    EXIT_CLOSED_PIPE: "stdout's reader stopped early (`predict ... | head -2`): the command ends quietly, as Unix "
                      "tools do",
}
