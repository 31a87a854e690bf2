"""``python -m cnnlab_tf.train``: train, checkpoint and export a cnnlab model with TensorFlow/Keras. See ``--help``.
Imported, it is also the API function: ``cnnlab_tf.train(experiment=..., epochs=...)``."""

import sys

import shared.util.timings  # noqa: F401  (first: a run's wall time counts from here)
from cnnlab_tf import load_backend, train
from shared.commands.api import callable_module
from shared.commands.train import command_line

if __name__ == "__main__":
    sys.exit(command_line("tf", load_backend))
else:
    callable_module(__name__, train)
