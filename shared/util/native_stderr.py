"""Start-up notes that native libraries print straight to the process's stderr, filtered out.

TensorFlow's C++ runtime writes its start-up notes (oneDNN, missing CUDA drivers, the cuInit probe of a machine
without a GPU) through absl logging, before Python can configure anything: ``TF_CPP_MIN_LOG_LEVEL`` no longer
silences them (tensorflow/tensorflow#100442). So the few calls that trigger them run with file descriptor 2
captured, and every captured line that is not a known start-up note is written back afterwards: genuine errors
still show, only later.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
from contextlib import contextmanager
from collections.abc import Iterator, Sequence

# What TensorFlow's C++ runtime prints on a CPU machine when it loads and first lists its devices: notes, not
# errors (cnnlab_tf.load_backend and cnnlab_tf.device filter them).
TENSORFLOW_START_UP_NOTES = (
    "All log messages before absl::InitializeLog() is called are written to STDERR",
    "oneDNN custom operations are on",
    "Could not find cuda drivers on your machine",
    "failed call to cuInit",
    "Unable to register cuDNN factory", "Unable to register cuFFT factory", "Unable to register cuBLAS factory",
    "computation placer already registered",
    "TensorFlow binary is optimized to use available CPU instructions",
    "To enable the following instructions",
)

# What TensorFlow 2.20 (Colab's) prints when a TF_CONFIG worker starts its gRPC server, whatever TF_CPP_MIN_LOG_LEVEL
# says (cnnlab_tf.distributed filters them).
TENSORFLOW_CLUSTER_NOTES = TENSORFLOW_START_UP_NOTES + ("Started server with target",)

# What TensorFlow 2.20 (Colab's) prints when tf2onnx runs Grappler on the exported graph, whatever
# TF_CPP_MIN_LOG_LEVEL says; 2.21 prints nothing there (cnnlab_tf.exporters filters them).
TENSORFLOW_EXPORT_NOTES = TENSORFLOW_START_UP_NOTES + (
    "Number of eligible GPUs (core count >= 8, compute capability >= 0.0)",
    "single_machine.cc:376] Starting new session",
)


def kept_lines(text: str, notes: Sequence[str]) -> str:
    """``text`` without the lines that contain one of ``notes``."""
    return "".join(line for line in text.splitlines(keepends=True) if not any(note in line for note in notes))


@contextmanager
def filtered(notes: Sequence[str]) -> Iterator[None]:
    """Run the block with fd 2 captured; afterwards write back what it printed, less the lines naming ``notes``.
    Python's ``sys.stderr`` is captured too: where it is not fd 2 (a notebook, pytest's capsys), a library that
    logs through it (ExecuTorch's bindings do) would otherwise bypass the filter."""
    sys.stderr.flush()
    saved = os.dup(2)
    python_level = io.StringIO()
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            with contextlib.redirect_stderr(python_level):
                yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            sys.stderr.write(kept_lines(capture.read().decode(errors="replace") + python_level.getvalue(), notes))
            sys.stderr.flush()
