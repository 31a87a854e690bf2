"""Both frameworks in one process. Import order matters: torch, then triton, then tensorflow. TensorFlow first (or
triton after it) segfaults while loading libtriton, because both bundle LLVM (measured with torch 2.14 and TensorFlow 2.21). Import this module
before anything that imports a framework."""

import torch  # noqa: F401

try:
    import triton  # noqa: F401
except ImportError:  # a torch build without triton has nothing to clash with
    pass

import cnnlab_tf  # noqa: F401,E402  (sets KERAS_BACKEND before keras loads)
import tensorflow  # noqa: F401,E402
