"""``python -m cnnlab_tf.train``: train, checkpoint and export a cnnlab model with TensorFlow/Keras. See ``--help``."""

import sys

from cnnlab_tf import load_backend
from shared.runner import main

if __name__ == "__main__":
    sys.exit(main("tf", load_backend))
