"""``python -m cnnlab_tf.train``: train, checkpoint and export a cnnlab model with TensorFlow/Keras. See ``--help``."""

import sys

from shared.runner import main


def _load_backend():
    from cnnlab_tf.backend import BACKEND  # imported after the flags are checked: TensorFlow takes seconds to load

    return BACKEND


if __name__ == "__main__":
    sys.exit(main("tf", _load_backend))
