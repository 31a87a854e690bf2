"""A model split at its first trainable layer, for training on cached backbone features (``shared.run.feature_cache``):
the frozen backbone's outputs, and the trainable tail as a model of its own that shares the full model's
parameters. Mirrors ``cnnlab_tf.features``."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from cnnlab_torch.model import SpecModel
from cnnlab_torch.precision import autocast, set_model_precision, variable_dtype
from shared.model.specs import ModelSpec


def _split(model: SpecModel, spec: ModelSpec, first_trainable_layer: str) -> tuple[list, list]:
    """(name, module) of the top-level layers before ``first_trainable_layer``, and of it and those after."""
    cut = [name for name, _ in spec.layers].index(first_trainable_layer)
    children = list(model.named_children())
    return children[:cut], children[cut:]


@torch.no_grad()
def backbone_features(model: SpecModel, spec: ModelSpec, first_trainable_layer: str, images: np.ndarray,
                      batch_size: int, on_batch: Callable[[int], None] = lambda count: None) -> np.ndarray:
    """The output of the layers before ``first_trainable_layer`` for NHWC images, in inference mode in the model's
    precision, batch by batch; ``on_batch(count)`` after each batch. The features come back in the variable dtype:
    64-true keeps float64, and a mixed mode's 16-bit outputs widen to float32 exactly."""
    model.eval()
    backbone = nn.Sequential(*(module for _, module in _split(model, spec, first_trainable_layer)[0]))
    device, dtype = next(model.parameters()).device, variable_dtype(model.precision)
    chunks = []
    with autocast(model.precision, device):
        for start in range(0, len(images), batch_size):
            batch = images[start:start + batch_size]
            chunks.append(backbone(torch.from_numpy(batch).to(device, dtype)).to(dtype).cpu().numpy())
            on_batch(len(batch))
    return np.concatenate(chunks)


def head_model(model: SpecModel, spec: ModelSpec, first_trainable_layer: str) -> nn.Sequential:
    """The layers from ``first_trainable_layer`` on, as a model from features to logits. It holds the full model's
    own modules, so an optimizer over the full model's parameters trains it, and the full model (checkpoints,
    neutral weights, ONNX export) holds what it learned."""
    head = nn.Sequential(OrderedDict(_split(model, spec, first_trainable_layer)[1]))
    set_model_precision(head, model.precision)  # read by the engine's autocast and dtype choices
    return head
