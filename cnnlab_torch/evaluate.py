"""``python -m cnnlab_torch.evaluate RUN_DIR``: reload a finished run (of either framework) and recompute its validation
accuracy. See ``--help`` and ``shared.commands.evaluate``."""

import sys

from cnnlab_torch import load_backend
from shared.commands.evaluate import main

if __name__ == "__main__":
    sys.exit(main("torch", load_backend))
