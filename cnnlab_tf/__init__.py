"""The TensorFlow/Keras 3 backend of cnnlab; mirrors ``cnnlab_torch`` module by module."""

import os

# Keras 3 reads its backend once, at first import; this package is the TensorFlow one.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# TensorFlow's C++ chatter hides the training output. The level silences TensorFlow's own logs; the absl lines it
# prints while loading ignore it (tensorflow#100442) and are filtered by load_backend.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# oneDNN decides Keras's speed on CPUs: ResNet-18 at 64 px trains 3.6x faster with it (310 against 1110 ms per step
# of 32 here), and the small CIFAR CNN is no slower. TensorFlow turns it on by itself only on some CPUs (on AVX-512
# ones, not on AVX2-only ones such as AMD Zen 3), so ask for it everywhere; it must be set before TensorFlow loads.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")


def load_backend():
    """The backend, imported when first needed (TensorFlow takes seconds to load), without its start-up notes."""
    from shared.native_stderr import TENSORFLOW_START_UP_NOTES, filtered

    with filtered(TENSORFLOW_START_UP_NOTES):
        from cnnlab_tf.backend import BACKEND
    return BACKEND
