"""Training and evaluation in PyTorch. ``cnnlab_tf.engine`` offers the same functions with the same arguments
(``train_step``, ``read_batches``, ``gather_batch``, ``train_steps``), and both hand ``shared.training.loop`` the
same ``steps`` and ``read``. How a group of steps runs differs: here each batch is one eager step, and several
replicas are several processes (DDP, ``cnnlab_torch.distributed``); Keras traces a group of batches into one graph
call and runs its replicas inside one process (tf.distribute)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cnnlab_torch.distributed import current_world, loss_scale, parallel, summed
from cnnlab_torch.optimizer import set_learning_rate
from cnnlab_torch.precision import autocast, loss_scaler, model_precision, variable_dtype
from shared.data.augment import pad
from shared.training.config import TrainConfig
from shared.data.dataset import Dataset
from shared.training.loop import Batch, Read, Steps


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, images: torch.Tensor, labels: torch.Tensor,
               scaler: torch.amp.GradScaler | None = None,
               loss_scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimizer step on a batch of NHWC images in the model's variable dtype; returns the batch's mean loss and
    correct count as 0-d tensors, left on the device. ``scaler`` scales the loss (16-mixed); ``loss_scale``
    multiplies the loss that is differentiated (a process's share of a distributed batch)."""
    model.train()
    precision = model_precision(model)  # a SpecModel's (DDP's wrapper and torch.compile's pass it on)
    # Forward, convolutions and matmuls in the precision's compute dtype; the loss in the variable dtype
    with autocast(precision, images.device):
        logits = model(images)
    loss = F.cross_entropy(logits.to(variable_dtype(precision)), labels)
    # Backward and update; a scaler skips the update when the scaled gradients overflowed
    optimizer.zero_grad(set_to_none=True)
    if scaler is None:
        (loss * loss_scale).backward()  # times 1.0 alone: exact
        optimizer.step()
    else:
        scaler.scale(loss * loss_scale).backward()
        scaler.step(optimizer)
        scaler.update()
    # Statistics of the batch, on the logits before the update
    correct = (logits.argmax(dim=1) == labels).sum()
    return loss.detach(), correct


def read_batches(values: tuple[torch.Tensor, torch.Tensor]) -> tuple[np.ndarray, np.ndarray]:
    """Losses and correct counts of several batches in one device-to-host transfer each."""
    losses, corrects = values
    return losses.double().cpu().numpy(), corrects.cpu().numpy()


def gather_batch(images: torch.Tensor, labels: torch.Tensor, index: torch.Tensor, rows: torch.Tensor | None = None,
                 cols: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch's uint8 images and labels, picked on the device. With crops, ``images`` is the padded training set
    and each image is read through its crop's ``rows`` and ``cols`` (``shared.data.augment.apply``, as one gather)."""
    if rows is None:
        return images[index], labels[index]
    assert cols is not None  # a crop comes as its rows and its cols
    return images[index[:, None, None], rows[:, :, None], cols[:, None, :]], labels[index]


def _compiled(model: nn.Module, enabled: bool) -> nn.Module:
    """``torch.compile(model)`` when asked and Inductor can build here, else the model itself. The compiled module
    shares the model's parameters, so the optimizer, checkpoints and export see the trained weights either way."""
    if not enabled:
        return model
    try:  # Inductor compiles C++ on the first call; a machine without a compiler fails there (pytorch#92745)
        torch.compile(lambda x: x * 2 + 1)(torch.ones(2, device=next(model.parameters()).device))
    except Exception as error:  # noqa: BLE001 - any backend failure means: train eagerly
        print(f"warning: --compile: torch.compile cannot build here ({type(error).__name__}: "
              f"{str(error).splitlines()[0] if str(error) else ''}); training without it", file=sys.stderr)
        return model
    # the cast: torch.compile of a module is an OptimizedModule, a module, though its stub returns a callable
    return cast(nn.Module, torch.compile(model))


def train_steps(model: nn.Module, optimizer: torch.optim.Optimizer, train: Dataset,
                config: TrainConfig) -> tuple[Steps, Read]:
    """``shared.training.loop``'s ``steps`` and ``read`` over ``train``: ``shared.training.backend.Trainer.fit``
    runs the epochs."""
    device = next(model.parameters()).device
    dtype = variable_dtype(config.precision)
    # The uint8 training set lives on the device once (padded for the crops); each step gathers its batch there.
    images = torch.from_numpy(pad(train.images, config.augmentation.padding)).to(device)
    labels = torch.from_numpy(train.labels).to(device)
    # Several processes (torchrun): each takes its rows of every batch, and DDP averages the gradients (loss_scale).
    world = current_world()
    training_model = parallel(_compiled(model, config.compile))
    # A new scaler per fit starts from its initial scale: a resumed 16-mixed run may skip a step or two more.
    scaler = loss_scaler(config.precision, optimizer)

    def step(batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        set_learning_rate(optimizer, batch.lr)
        rows = world.share(len(batch.indices))
        index = torch.from_numpy(batch.indices[rows]).to(device)
        crops = []  # no augmentation
        if batch.crops:
            crops = [torch.from_numpy(part[rows]).to(device) for part in (batch.crops.rows, batch.crops.cols)]
        batch_images, batch_labels = gather_batch(images, labels, index, *crops)
        scale = loss_scale(len(index), len(batch.indices))  # 1.0 in one process
        loss, correct = train_step(training_model, optimizer, batch_images.to(dtype), batch_labels, scaler, scale)
        if not world.distributed:
            return loss, correct
        return loss * len(index) / len(batch.indices), correct  # summed over the processes: the batch's mean

    def steps(batches: Sequence[Batch]) -> tuple[torch.Tensor, torch.Tensor]:
        # One at a time: an eager step has no per-call cost to spread over several batches
        losses, corrects = zip(*(step(batch) for batch in batches))
        return torch.stack(losses), torch.stack(corrects)

    def read(values: tuple[torch.Tensor, torch.Tensor]) -> tuple[np.ndarray, np.ndarray]:
        if not world.distributed:
            return read_batches(values)
        # Every process gets the global batch's loss and correct count, so all of them agree on the metrics
        together = summed(torch.stack([values[0].double(), values[1].double()]))
        return together[0].cpu().numpy(), together[1].cpu().numpy().round().astype(np.int64)

    return steps, read
