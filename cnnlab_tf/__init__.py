"""The TensorFlow/Keras 3 backend of cnnlab; mirrors ``cnnlab_torch`` module by module.

``cnnlab_tf.train(experiment="digits", epochs=5)`` trains as ``python -m cnnlab_tf.train --experiment digits
--epochs 5`` does and returns the ``Run``: its directory, its metrics and the trained ``keras.Model``.
"""

import importlib.util
import os
import sys

# Keras 3 reads its backend once, at first import; this package is the TensorFlow one.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# TensorFlow's C++ chatter hides the training output. The level silences TensorFlow's own logs; the absl lines it
# prints while loading ignore it (tensorflow#100442) and are filtered by load_backend.
# Several workers (TF_CONFIG): when one leaves, the runtime logs every collective the others wait in as aborted,
# six lines each, before the exception the run reports in one line with the same reason (PeerLost); those workers
# log fatal errors only.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3" if "TF_CONFIG" in os.environ else "2")
# oneDNN decides Keras's speed on CPUs: ResNet-18 at 64 px trains 3.6x faster with it (310 against 1110 ms per step
# of 32 here), and the small CIFAR CNN is no slower. TensorFlow turns it on by itself only on some CPUs (on AVX-512
# ones, not on AVX2-only ones such as AMD Zen 3), so ask for it everywhere; it must be set before TensorFlow loads.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")


def load_backend():
    """The backend, imported when first needed (TensorFlow takes seconds to load), without its start-up notes."""
    from shared.util.native_stderr import TENSORFLOW_START_UP_NOTES, filtered

    with filtered(TENSORFLOW_START_UP_NOTES):
        from cnnlab_tf.backend import BACKEND
    return BACKEND


def train(**options):
    """Train, checkpoint and export a model; the keywords are the command line's flags (``shared.commands.api``).
    Raises ``shared.util.errors.UsageError`` for a mistake the user can fix."""
    from shared.commands import api

    _load_torch_first()
    return api.train("tf", load_backend, **options)


def _load_torch_first() -> None:
    """A notebook may train with both backends in one process. torch's ONNX export loads triton, which segfaults
    if TensorFlow was loaded before it (both bundle LLVM), so torch and triton load first."""
    if "tensorflow" in sys.modules or importlib.util.find_spec("torch") is None:
        return
    import torch  # noqa: F401

    if importlib.util.find_spec("triton") is not None:
        import triton  # noqa: F401


def predict(model, images, top: int = 5, **options) -> list[dict]:
    """Classify images (a path, or a list of files and folders) with a trained model: a run directory or ``Run`` of
    either framework, or an exported .onnx, .tflite or .pte file. Returns one record per readable image,
    ``{"image", "top": [{"label", "index", "probability"}, ...]}``, best first; ``options``: ``batch_size``,
    ``device``, ``threads``. Raises ``shared.util.errors.UsageError`` for a mistake the user can fix."""
    from shared.commands import predict as command

    return command.predict("tf", load_backend, model, images, top, runners=runners(), **options)


def evaluate(run, neutral: bool = False):
    """Reload a finished run (a run directory or ``Run`` of either framework; a study evaluates its best arm) and
    measure its validation accuracy again on the images it recorded, as ``python -m cnnlab_tf.evaluate`` does.
    Returns a ``shared.commands.evaluate.Evaluation``: ``accuracy``, ``recorded``, ``reproduced``, ``summary()``.
    ``neutral=True`` loads weights.npz even where the native checkpoint is this framework's. Raises
    ``shared.util.errors.UsageError`` for a mistake the user can fix."""
    from shared.commands.evaluate import evaluate_run

    return evaluate_run("tf", load_backend, getattr(run, "path", run), neutral)


def serve(model, port: int = 0, **options):
    """Serve a trained model over HTTP (what ``python -m cnnlab_tf.serve`` runs) and return the running server,
    once it is ready: ``.url``, ``.page``, ``.stop()``, or use it in a ``with`` block. ``model`` is what ``predict``
    takes; ``options`` are the command's flags as keywords (``host``, ``name``, ``max_batch``, ``batch_delay_ms``,
    ``threads``, ``token``, ``no_token``, ``max_body_mb``, ``device``). Raises ``shared.util.errors.UsageError`` for a
    mistake the user can fix."""
    from shared.commands import serve as command

    return command.serve("tf", load_backend, model, runners=runners(), set_threads=set_threads, port=port,
                         **options)


def set_threads(threads: int) -> None:
    """Bound the framework's own threads (a run directory's model runs in it) before it starts any work."""
    from cnnlab_tf.bench import set_threads as bound

    try:
        bound(threads)
    except RuntimeError:  # TensorFlow already ran in this process (a notebook that trained first): it keeps its pools
        pass


def runners() -> dict:
    """Openers of the exported files that need a framework to run."""
    # ExecuTorch files run in ExecuTorch's runtime, whose Python binding takes torch tensors: PyTorch's runner
    from cnnlab_torch.runtime import mobile_runner

    return {"executorch": mobile_runner}
