"""The TensorFlow/Keras 3 backend of cnnlab; mirrors ``cnnlab_torch`` module by module."""

import os

# Keras 3 reads its backend once, at first import; this package is the TensorFlow one.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# TensorFlow's C++ start-up chatter (CPU feature notes, missing CUDA drivers) hides the training output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
