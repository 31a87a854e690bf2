"""``python -m cnnlab_torch.train``: train, checkpoint and export a cnnlab model with PyTorch. See ``--help``.
Imported, it is also the API function: ``cnnlab_torch.train(experiment=..., epochs=...)``."""

import sys

import shared.util.timings  # noqa: F401  (first: a run's wall time counts from here)
from cnnlab_torch import load_backend, train
from shared.commands.api import callable_module
from shared.commands.train import command_line

if __name__ == "__main__":
    sys.exit(command_line("torch", load_backend))
else:
    callable_module(__name__, train)
