"""``--precision`` in PyTorch: the model's dtype, ``torch.autocast`` around the forward pass, and ``GradScaler`` for
16-mixed. Mirrors ``cnnlab_tf.precision``; the modes themselves are defined in ``shared.training.precision``."""

from __future__ import annotations

import contextlib
from typing import cast

import torch
from torch import nn

from shared.training.precision import LOSS_SCALE_GROWTH, LOSS_SCALE_INITIAL, precision

_DTYPES = {"float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16,
           "float16": torch.float16}


def model_precision(model: nn.Module) -> str:
    """The precision name a model runs in: a ``SpecModel``'s ``precision`` (DDP's wrapper, torch.compile's and a
    feature-cache head carry it too); no silent default. The cast: torch types an unknown module attribute as a
    tensor or a module."""
    return cast(str, model.precision)


def set_model_precision(model: nn.Module, name: str) -> None:
    """Give a module that runs a ``SpecModel``'s layers (a copy, a head) the precision ``model_precision`` reads."""
    # the ignore: torch types nn.Module.__setattr__'s value as a tensor or a module; any other is a plain attribute
    model.precision = name  # type: ignore[assignment]


def variable_dtype(name: str) -> torch.dtype:
    """The dtype of the weights, the optimizer state, the input images and the loss."""
    return _DTYPES[precision(name).variables]


def autocast(name: str, device: torch.device):
    """Where the mixed modes compute convolutions and linear layers in 16 bits. Autocast keeps the losses,
    normalisations and reductions it lists in float32; elementwise ops run in the dtype that arrives."""
    mode = precision(name)
    if not mode.mixed:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=_DTYPES[mode.compute])


def loss_scaler(name: str, optimizer: torch.optim.Optimizer) -> torch.amp.GradScaler | None:
    """Dynamic loss scaling for 16-mixed, else None. A step whose gradients overflowed is skipped
    (``optimizer.step()`` is not called, so Adam's step count stays put) and the scale halves."""
    if not precision(name).loss_scaling:
        return None
    device = optimizer.param_groups[0]["params"][0].device
    return torch.amp.GradScaler(device.type, init_scale=LOSS_SCALE_INITIAL, growth_interval=LOSS_SCALE_GROWTH)

