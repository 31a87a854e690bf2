"""``python -m cnnlab_torch.train``: train, checkpoint and export a cnnlab model with PyTorch. See ``--help``."""

import sys

from shared.runner import main


def _load_backend():
    from cnnlab_torch.backend import BACKEND  # imported after the flags are checked: torch takes seconds to load

    return BACKEND


if __name__ == "__main__":
    sys.exit(main("torch", _load_backend))
