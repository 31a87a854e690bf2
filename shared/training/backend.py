"""The contract between the runner and a backend: the functions ``cnnlab_torch.backend`` and ``cnnlab_tf.backend``
provide, with the same meaning in both. A backend imports this module, never the runner, so loading a backend does
not pull in the experiments, the plots or the command line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from shared.training.config import TrainConfig
from shared.data.dataset import Dataset
from shared.training.distributed import World
from shared.formats.optimizer_state import OptimizerState
from shared.training.loop import BatchesCallback
from shared.model.specs import ModelSpec
from shared.training.tensorboard_log import ScalarWriter

# on_epoch_end(record): called after every finished epoch, before the next one starts.
EpochCallback = Callable[[dict], None]


@dataclass(frozen=True)
class Backend:
    framework: str  # "torch" or "tf"
    version: str  # the framework's version string
    checkpoint_name: str  # the native model checkpoint's file name in a run directory
    optimizer_name: str  # the native optimizer state's file name in a checkpoint
    # ("auto" | "cpu" | "cuda", replicas, peer_timeout seconds) -> description; UsageError if unavailable
    select_device: Callable[[str, int, float], str]
    build_model: Callable[[ModelSpec, str], Any]  # (spec, precision name) -> model on the selected device
    set_weights: Callable[[Any, ModelSpec, dict], None]  # canonical weights -> model
    get_weights: Callable[[Any, ModelSpec], dict]  # model -> canonical weights
    count_trainable: Callable[[Any], int]
    freeze: Callable[[Any, ModelSpec, tuple[str, ...]], list[str]]  # trainable prefixes -> trainable names
    make_optimizer: Callable[[Any, TrainConfig], Any]  # Adam with PyTorch's rule over the trainable parameters
    get_optimizer_state: Callable[[Any, ModelSpec, Any], OptimizerState]  # -> canonical names and layout
    set_optimizer_state: Callable[[Any, ModelSpec, Any, OptimizerState], None]
    save_optimizer: Callable[[Any, Path], None]  # the native optimizer state
    load_optimizer: Callable[[Any, Path], None]
    # fit(model, optimizer, train, val, config, on_epoch_end, first_epoch, on_batches): epochs
    # first_epoch..config.epochs through shared.training.loop.run_epochs
    fit: Callable[[Any, Any, Dataset, Dataset, TrainConfig, EpochCallback, int, BatchesCallback | None], list[dict]]
    predict_logits: Callable[[Any, np.ndarray, int], np.ndarray]
    save_checkpoint: Callable[[Any, Path], None]
    load_checkpoint: Callable[[Any, Path], None]  # native checkpoint -> model
    # export_onnx(model, spec, path, check_images, opset=OPSET, metadata=None) -> the self-check report
    # (shared.formats.onnx_check); metadata: the run's identity, as the file's metadata_props
    export_onnx: Callable[..., dict]
    # the phone format this framework writes ("executorch" or "litert", shared.formats.runtimes.FORMATS), and
    # export_mobile(model, spec, path, quantize=None) writing it; the caller checks the file
    mobile_format: str
    export_mobile: Callable[..., None]
    port_checkpoint: Callable[[Path, Path], None]  # torchvision .pth -> neutral .npz
    # backbone_features(model, spec, first_trainable_layer, images, batch_size, on_batch): the output of the layers
    # before first_trainable_layer, in inference mode; on_batch(count) after each batch (shared.run.feature_cache)
    backbone_features: Callable[[Any, ModelSpec, str, np.ndarray, int, Callable[[int], None]], np.ndarray]
    # head_model(model, spec, first_trainable_layer): features -> logits through the model's own layers from
    # first_trainable_layer on, sharing their parameters, so fit(head, ...) trains the full model's head
    head_model: Callable[[Any, ModelSpec, str], Any]
    # summary_writer(log_dir): the framework's own TensorBoard writer, as a shared.training.tensorboard_log.ScalarWriter
    summary_writer: Callable[[Path], ScalarWriter]
    # Several processes (torchrun's, or TF_CONFIG workers; shared.training.distributed): this process's place, once
    # select_device has joined them; broadcast(value) -> rank 0's value; finish(stopped) leaves the group when all
    # are done, or at once when this process stopped early (its peers may wait in a collective it will never join)
    current_world: Callable[[], World]
    broadcast: Callable[[Any], Any]
    finish: Callable[[bool], None]
