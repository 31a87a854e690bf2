"""``python -m cnnlab_tf.export RUN --format ...``: export a finished run's model (of either framework) to a file
and check it against the model. See ``--help`` and ``shared.commands.export``; the exporters are
``cnnlab_tf.exporters``."""

import sys

from cnnlab_tf import load_backend
from shared.commands.export import main

if __name__ == "__main__":
    sys.exit(main("tf", load_backend))
