"""The PyTorch backend of cnnlab; ``cnnlab_tf`` mirrors it module by module.

``cnnlab_torch.train(experiment="digits", epochs=5)`` trains as ``python -m cnnlab_torch.train --experiment digits
--epochs 5`` does and returns the ``Run``: its directory, its metrics and the trained ``torch.nn.Module``.
"""

import importlib.util
import sys


def load_backend():
    """The backend, imported when first needed (PyTorch takes seconds to load); mirrors ``cnnlab_tf.load_backend``."""
    from cnnlab_torch.backend import BACKEND

    return BACKEND


def train(**options):
    """Train, checkpoint and export a model; the keywords are the command line's flags (``shared.commands.api``).
    Raises ``shared.util.errors.UsageError`` for a mistake the user can fix."""
    from shared.commands import api
    from shared.util.errors import UsageError

    if "tensorflow" in sys.modules and "triton" not in sys.modules and importlib.util.find_spec("triton"):
        # torch's ONNX export loads triton, which segfaults once TensorFlow is loaded (both bundle LLVM;
        # cnnlab_tf.train loads torch and triton first for this reason).
        raise UsageError("TensorFlow was imported in this process before PyTorch's triton, and PyTorch's ONNX "
                         "export would crash; restart the kernel and call cnnlab_torch.train or cnnlab_tf.train "
                         "before importing tensorflow yourself")
    return api.train("torch", load_backend, **options)


def predict(model, images, top: int = 5, **options) -> list[dict]:
    """Classify images (a path, or a list of files and folders) with a trained model: a run directory or ``Run`` of
    either framework, or an exported .onnx, .tflite or .pte file. Returns one record per readable image,
    ``{"image", "top": [{"label", "index", "probability"}, ...]}``, best first; ``options``: ``batch_size``,
    ``device``, ``threads``. Raises ``shared.util.errors.UsageError`` for a mistake the user can fix."""
    from shared.commands import predict as command

    return command.predict("torch", load_backend, model, images, top, runners=runners(), **options)


def evaluate(run, neutral: bool = False):
    """Reload a finished run (a run directory or ``Run`` of either framework; a study evaluates its best arm) and
    measure its validation accuracy again on the images it recorded, as ``python -m cnnlab_torch.evaluate`` does.
    Returns a ``shared.commands.evaluate.Evaluation``: ``accuracy``, ``recorded``, ``reproduced``, ``summary()``.
    ``neutral=True`` loads weights.npz even where the native checkpoint is this framework's. Raises
    ``shared.util.errors.UsageError`` for a mistake the user can fix."""
    from shared.commands.evaluate import evaluate_run

    return evaluate_run("torch", load_backend, getattr(run, "path", run), neutral)


def serve(model, port: int = 0, **options):
    """Serve a trained model over HTTP (what ``python -m cnnlab_torch.serve`` runs) and return the running server,
    once it is ready: ``.url``, ``.page``, ``.stop()``, or use it in a ``with`` block. ``model`` is what ``predict``
    takes; ``options`` are the command's flags as keywords (``host``, ``name``, ``max_batch``, ``batch_delay_ms``,
    ``threads``, ``token``, ``no_token``, ``max_body_mb``, ``device``). Raises ``shared.util.errors.UsageError`` for a
    mistake the user can fix."""
    from shared.commands import serve as command

    return command.serve("torch", load_backend, model, runners=runners(), set_threads=set_threads, port=port,
                         **options)


def set_threads(threads: int) -> None:
    """Bound the framework's own threads (a run directory's model runs in it) before it starts any work."""
    from cnnlab_torch.bench import set_threads as bound

    bound(threads)


def runners() -> dict:
    """Openers of the exported files that need a framework to run."""
    from cnnlab_torch.runtime import mobile_runner

    return {"executorch": mobile_runner}
