"""``python -m cnnlab_torch.evaluate RUN_DIR``: reload a finished run (of either framework) and recompute its validation
accuracy. See ``--help`` and ``shared.evaluate``."""

import sys

from shared.evaluate import main


def _load_backend():
    from cnnlab_torch.backend import BACKEND  # imported after the arguments are checked

    return BACKEND


if __name__ == "__main__":
    sys.exit(main("torch", _load_backend))
