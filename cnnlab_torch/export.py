"""``python -m cnnlab_torch.export RUN --format ...``: export a finished run's model (of either framework) to a file
and check it against the model. See ``--help`` and ``shared.commands.export``; the exporters are
``cnnlab_torch.exporters``."""

import sys

from cnnlab_torch import load_backend
from cnnlab_torch.runtime import mobile_runner
from shared.commands.export import main

if __name__ == "__main__":
    sys.exit(main("torch", load_backend, runners={"executorch": mobile_runner}))
