"""The contract between the runner and a backend, as abstract base classes in the style of Keras's ``Trainer``:

- ``Trainer``: ``fit`` and ``evaluate``, written once here. A backend supplies ``train_steps`` (its ``steps`` and
  ``read`` for ``shared.training.loop``) and ``predict_logits``.
- ``Exporter``: one file format a backend writes; a backend's ``exporters`` maps each format it owns to one, so a
  new format is one entry.
- ``Backend``: everything else the runner asks of a framework, as typed abstract methods.

``cnnlab_torch.backend.TorchBackend`` and ``cnnlab_tf.backend.KerasBackend`` implement them. A backend imports this
module, never the runner, so loading a backend does not pull in the experiments, the plots or the command line.
Tests inject faults by subclassing a backend or by replacing an entry of its ``exporters``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from shared.data.dataset import Dataset
from shared.formats.optimizer_state import OptimizerState
from shared.model.specs import ModelSpec
from shared.training.config import TrainConfig
from shared.training.precision import DEFAULT_PRECISION
from shared.training.distributed import DEFAULT_PEER_TIMEOUT, World
from shared.training.loop import BatchesCallback, Read, Steps, run_epochs
from shared.training.metrics import accuracy, cross_entropy
from shared.training.tensorboard_log import ScalarWriter

FRAMEWORK_NAMES = {"torch": "PyTorch", "tf": "Keras"}  # what a report calls each backend

# on_epoch_end(record): called after every finished epoch, before the next one starts.
EpochCallback = Callable[[dict], None]
# A framework's model and optimizer: torch.nn.Module / keras.Model, torch.optim.Optimizer / keras's. ``Any`` here,
# because ``shared`` never imports a framework; each backend's own functions take the concrete types.
Model = Any
Optimizer = Any


class Trainer(ABC):
    """``fit`` and ``evaluate`` for every backend; a backend supplies how its steps run and how it predicts."""

    @abstractmethod
    def train_steps(self, model: Model, optimizer: Optimizer, train: Dataset,
                    config: TrainConfig) -> tuple[Steps, Read]:
        """The ``steps`` and ``read`` of ``shared.training.loop.run_epochs`` over ``train`` (put on the device once)."""

    @abstractmethod
    def predict_logits(self, model: Model, images: np.ndarray, batch_size: int) -> np.ndarray:
        """float32 logits for NHWC images, in inference mode in the model's precision, batch by batch."""

    def fit(self, model: Model, optimizer: Optimizer, train: Dataset, val: Dataset, config: TrainConfig,
            on_epoch_end: EpochCallback = lambda record: None, first_epoch: int = 1,
            on_batches: BatchesCallback | None = None) -> list[dict]:
        """Epochs ``first_epoch``..``config.epochs`` with the shared batch order, validating after every epoch."""
        steps, read = self.train_steps(model, optimizer, train, config)
        return run_epochs(steps, read, lambda: self.evaluate(model, val, config.batch_size), len(train.labels),
                          config, on_epoch_end, first_epoch, train.image_size, on_batches)

    def evaluate(self, model: Model, data: Dataset, batch_size: int) -> tuple[float, float]:
        """Mean cross-entropy and accuracy in inference mode."""
        logits = self.predict_logits(model, data.images, batch_size)
        return cross_entropy(logits, data.labels), accuracy(logits, data.labels)


@dataclass(frozen=True)
class ExportOptions:
    check_images: np.ndarray  # float32 NHWC images the ONNX exporter checks its file on
    opset: int | None = None  # ONNX opset; None: shared.formats.onnx_check.OPSET
    metadata: dict[str, str] | None = None  # the run's identity, as an ONNX file's metadata_props
    quantize: str | None = None  # a phone format's quantization (shared.formats.runtimes.FORMATS)


@dataclass(frozen=True)
class Exporter:
    """One file format a backend writes. ``write(model, spec, path, options)`` returns the exporter's own self-check
    report (ONNX's, shared.formats.onnx_check) or None; the caller checks every file against the native model."""

    format: str  # a shared.formats.runtimes.FORMATS name
    write: Callable[[Model, ModelSpec, Path, ExportOptions], dict | None]


class Backend(Trainer):
    framework: ClassVar[str]  # "torch" or "tf"
    version: ClassVar[str]  # the framework's version string
    checkpoint_name: ClassVar[str]  # the native model checkpoint's file name in a run directory
    optimizer_name: ClassVar[str]  # the native optimizer state's file name in a checkpoint
    exporters: dict[str, Exporter]  # format -> its exporter; "onnx" and the framework's phone format

    @abstractmethod
    def select_device(self, name: str, replicas: int = 1, peer_timeout: float = DEFAULT_PEER_TIMEOUT) -> str:
        """``name``: "auto" | "cpu" | "cuda" -> a description of what was selected; UsageError if unavailable. With
        several processes (torchrun's, or TF_CONFIG workers) it joins them, waiting up to ``peer_timeout`` seconds."""

    @abstractmethod
    def build_model(self, spec: ModelSpec, precision: str = DEFAULT_PRECISION) -> Model:
        """The model on the selected device, in the precision's variable dtype."""

    @abstractmethod
    def set_weights(self, model: Model, spec: ModelSpec, weights: dict[str, np.ndarray]) -> None:
        """Canonical weights -> model."""

    @abstractmethod
    def get_weights(self, model: Model, spec: ModelSpec) -> dict[str, np.ndarray]:
        """Model -> canonical weights."""

    @abstractmethod
    def count_trainable(self, model: Model) -> int: ...

    @abstractmethod
    def freeze(self, model: Model, spec: ModelSpec, trainable_prefixes: tuple[str, ...]) -> list[str]:
        """Only the parameters under ``trainable_prefixes`` train; returns their names."""

    @abstractmethod
    def make_optimizer(self, model: Model, config: TrainConfig) -> Optimizer:
        """Adam with PyTorch's rule over the trainable parameters."""

    @abstractmethod
    def get_optimizer_state(self, model: Model, spec: ModelSpec, optimizer: Optimizer) -> OptimizerState:
        """The optimizer's state under canonical names and layout."""

    @abstractmethod
    def set_optimizer_state(self, model: Model, spec: ModelSpec, optimizer: Optimizer,
                            state: OptimizerState) -> None: ...

    @abstractmethod
    def save_optimizer(self, optimizer: Optimizer, path: Path) -> None:
        """The native optimizer state."""

    @abstractmethod
    def load_optimizer(self, optimizer: Optimizer, path: Path) -> None: ...

    @abstractmethod
    def save_checkpoint(self, model: Model, path: Path) -> None: ...

    @abstractmethod
    def load_checkpoint(self, model: Model, path: Path) -> None:
        """Native checkpoint -> model."""

    @abstractmethod
    def port_checkpoint(self, checkpoint: Path, neutral: Path) -> None:
        """torchvision .pth ``checkpoint`` -> neutral .npz ``neutral``."""

    @abstractmethod
    def backbone_features(self, model: Model, spec: ModelSpec, first_trainable_layer: str, images: np.ndarray,
                          batch_size: int, on_batch: Callable[[int], None]) -> np.ndarray:
        """The output of the layers before ``first_trainable_layer``, in inference mode; ``on_batch(count)`` after
        each batch (shared.run.feature_cache)."""

    @abstractmethod
    def head_model(self, model: Model, spec: ModelSpec, first_trainable_layer: str) -> Model:
        """features -> logits through the model's own layers from ``first_trainable_layer`` on, sharing their
        parameters, so ``fit(head, ...)`` trains the full model's head."""

    @abstractmethod
    def event_writer(self, log_dir: Path) -> ScalarWriter:
        """The framework's own TensorBoard writer."""

    @abstractmethod
    def current_world(self) -> World:
        """This process's place among several (shared.training.distributed), once select_device joined them."""

    @abstractmethod
    def broadcast(self, value: Any) -> Any:
        """Rank 0's value, in every process."""

    @abstractmethod
    def finish(self, stopped: bool = False) -> None:
        """Leave the group when all are done, or at once when this process stopped early (its peers may wait in a
        collective it will never join)."""

    def export(self, format_name: str, model: Model, spec: ModelSpec, path: Path,
               options: ExportOptions) -> dict | None:
        """Write ``path`` in ``format_name`` with this backend's exporter for it."""
        if format_name not in self.exporters:
            raise ValueError(f"the {self.framework} backend writes {', '.join(self.exporters)}, not {format_name}")
        return self.exporters[format_name].write(model, spec, path, options)
