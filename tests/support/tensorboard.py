"""Reading back what a run logged to TensorBoard, for the tests that check both frameworks log the same."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from shared.training.tensorboard_log import tensorboard_without_tensorflow


def read_scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar in the event files under ``log_dir`` as tag -> [(step, value), ...] in file order, whichever
    framework wrote them: PyTorch writes ``simple_value`` summaries, ``tf.summary`` tensor ones. Needs the
    ``tensorboard`` package, not a framework."""
    tensorboard_without_tensorflow()
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.data_compat import migrate_value
    from tensorboard.util import tensor_util

    scalars = defaultdict(list)
    for path in sorted(Path(log_dir).rglob("events.out.tfevents.*")):
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                value = migrate_value(value)  # simple_value -> a scalar tensor, as TensorBoard itself reads it
                scalars[value.tag].append((event.step, float(tensor_util.make_ndarray(value.tensor))))
    return dict(scalars)
