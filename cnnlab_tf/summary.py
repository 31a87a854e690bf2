"""TensorBoard event files through TensorFlow's own writer, ``tf.summary``; the tags are ``shared.tensorboard_log``'s,
the same as ``cnnlab_torch.summary`` writes."""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf
from tensorflow.core.framework.summary_pb2 import SummaryMetadata

# What tf.summary.scalar attaches. tf.summary.scalar itself is TensorBoard's code and resolves TensorFlow through
# tensorboard's compat layer, which a PyTorch run in the same process (a notebook) has pointed at its stub
# (shared.tensorboard_log.tensorboard_without_tensorflow); tf.summary.write is TensorFlow's own op.
SCALAR = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="scalars"))


class TfScalarWriter:
    def __init__(self, log_dir: Path):
        self.writer = tf.summary.create_file_writer(str(log_dir))

    def scalar(self, tag: str, value: float, step: int) -> None:
        with self.writer.as_default():
            tf.summary.write(tag, tf.constant(value, tf.float32), step=step, metadata=SCALAR)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def summary_writer(log_dir: Path) -> TfScalarWriter:
    return TfScalarWriter(log_dir)
