"""``python -m cnnlab_torch.train``: train, checkpoint and export a cnnlab model with PyTorch. See ``--help``."""

import sys

from cnnlab_torch import load_backend
from shared.runner import main

if __name__ == "__main__":
    sys.exit(main("torch", load_backend))
