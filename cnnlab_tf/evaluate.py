"""``python -m cnnlab_tf.evaluate RUN_DIR``: reload a finished run (of either framework) and recompute its validation
accuracy. See ``--help`` and ``shared.commands.evaluate``.
Imported, it is also the API function: ``cnnlab_tf.evaluate(run_dir)``."""

import sys

from cnnlab_tf import evaluate, load_backend
from shared.commands.api import callable_module
from shared.commands.evaluate import main

if __name__ == "__main__":
    sys.exit(main("tf", load_backend))
else:
    callable_module(__name__, evaluate)
