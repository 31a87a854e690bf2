"""TensorBoard event files through PyTorch's own writer, ``torch.utils.tensorboard.SummaryWriter``; the tags are
``shared.training.tensorboard_log``'s, the same as ``cnnlab_tf.event_writer`` writes."""

from __future__ import annotations

from pathlib import Path

from shared.training.tensorboard_log import tensorboard_without_tensorflow

tensorboard_without_tensorflow()  # before torch.utils.tensorboard imports tensorboard
from torch.utils.tensorboard import SummaryWriter  # noqa: E402  (after the switch above)


class TorchScalarWriter:
    def __init__(self, log_dir: Path):
        self.writer = SummaryWriter(str(log_dir))

    def scalar(self, tag: str, value: float, step: int) -> None:
        self.writer.add_scalar(tag, value, step)

    def series(self, tag: str, values: list[float], first_step: int) -> None:
        for step, value in enumerate(values, start=first_step):
            self.writer.add_scalar(tag, value, step)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def event_writer(log_dir: Path) -> TorchScalarWriter:
    return TorchScalarWriter(log_dir)
