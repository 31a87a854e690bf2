"""The errors a user can cause, and how a run can end without finishing. This module imports nothing from the
project, so any module (a data reader, a download, the weights code, a backend) can raise them without pulling in
the command line or the experiments.

A ``UsageError`` is printed as one line (what was wrong, what was expected, what to do), with exit status 2 and no
traceback. Its kinds let a caller (or a test) tell a bad file from a bad flag without reading the message.
"""

from __future__ import annotations


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


# Exit statuses of the train command, documented in the README ("Long runs").
EXIT_OK, EXIT_NOT_REPRODUCED, EXIT_USAGE, EXIT_DIVERGED, EXIT_NOT_WRITTEN, EXIT_PEER_LOST = 0, 1, 2, 3, 4, 5
# export and predict: a file failed its check (nothing kept); some images could not be read (the rest predicted)
EXIT_CHECK_FAILED = EXIT_SOME_SKIPPED = 1
EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143  # 128 + SIGINT, 128 + SIGTERM, as shells report them
