"""What a run logs to TensorBoard, written once for both backends; each backend writes it with its own framework's
writer (``torch.utils.tensorboard`` and ``tf.summary``), so ``tensorboard --logdir runs`` shows the two side by side
under the same tags.

Every model folder gets a ``tensorboard/`` folder of event files:

- per epoch (step = epoch): ``loss/train``, ``loss/validation``, ``accuracy/train``, ``accuracy/validation``,
  ``speed/images_per_second`` (training steps only);
- per batch (step = optimizer step, counted from 1 over the whole run): ``batch/loss`` and ``batch/learning_rate``.

A resumed run appends to the same folder from the epoch it resumes at. The batches of an epoch that was cut short
are logged again when it is redone, and TensorBoard draws the later values.
"""

from __future__ import annotations

import sys
import types
from typing import Protocol

from shared.formats import history as keys
from shared.formats.history import EPOCH_TAGS

FOLDER = "tensorboard"

BATCH_LOSS, BATCH_LR = "batch/loss", "batch/learning_rate"


class ScalarWriter(Protocol):
    """A framework's event-file writer, reduced to what cnnlab logs."""

    def scalar(self, tag: str, value: float, step: int) -> None: ...
    def series(self, tag: str, values: list[float], first_step: int) -> None: ...  # at steps first_step, +1, ...
    def flush(self) -> None: ...
    def close(self) -> None: ...


class TrainingLog:
    """Feeds the training loop's callbacks into a ``ScalarWriter``."""

    def __init__(self, writer: ScalarWriter):
        self.writer = writer

    def batches(self, first_step: int, losses: list[float], rates: list[float]) -> None:
        self.writer.series(BATCH_LOSS, losses, first_step)
        self.writer.series(BATCH_LR, rates, first_step)

    def epoch(self, record: dict) -> None:
        for key, tag in EPOCH_TAGS.items():
            if key in record:
                self.writer.scalar(tag, record[key], record[keys.EPOCH])
        self.writer.flush()  # a finished epoch shows in TensorBoard now, not when the writer's buffer fills

    def close(self) -> None:
        """Close the writer. Its last events failing to reach the disk (full, read-only) costs a warning, not the
        run: a failure during the epochs has already stopped it with its own message."""
        try:
            self.writer.close()
        except OSError as error:
            print(f"warning: the last TensorBoard events could not be written ({error})", file=sys.stderr)


def tensorboard_without_tensorflow() -> None:
    """Make the ``tensorboard`` package use its TensorFlow stub. Its compat layer imports TensorFlow whenever it is
    installed (tensorboard/compat/__init__.py): that would load TensorFlow into every PyTorch run (seconds of
    start-up, its C++ log lines, and in one process the torch -> tensorflow -> triton segfault, both bundling
    LLVM). The layer's own switch for the stub is the presence of ``tensorboard.compat.notf``; writing and
    reading event files needs nothing more. Call it before importing ``torch.utils.tensorboard``. The switch holds
    for the process: TensorBoard's own summary functions (``tf.summary.scalar``) then fail if TensorFlow is loaded
    later, so ``cnnlab_tf.event_writer`` writes with TensorFlow's ``tf.summary.write``."""
    if "tensorflow" not in sys.modules:
        sys.modules.setdefault("tensorboard.compat.notf", types.ModuleType("tensorboard.compat.notf"))
