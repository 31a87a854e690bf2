"""Training and evaluation in PyTorch. ``cnnlab_tf.engine`` mirrors this file section by section; only the
autograd lines differ."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cnnlab_torch.model import predict_logits
from shared.config import TrainConfig
from shared.data import Dataset
from shared.loop import run_epochs
from shared.metrics import accuracy, cross_entropy


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, images: torch.Tensor,
               labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimizer step on a batch of float NHWC images; returns the batch's mean loss and correct count as
    0-d tensors, left on the device (reading them is a sync, which the caller does once per batch)."""
    model.train()
    # Forward
    logits = model(images)
    loss = F.cross_entropy(logits, labels)
    # Backward and update
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    # Statistics of the batch, on the logits before the update
    correct = (logits.argmax(dim=1) == labels).sum()
    return loss.detach(), correct


def evaluate(model: nn.Module, data: Dataset, batch_size: int) -> tuple[float, float]:
    """Mean cross-entropy and accuracy in inference mode."""
    logits = predict_logits(model, data.images, batch_size)
    return cross_entropy(logits, data.labels), accuracy(logits, data.labels)


def fit(model: nn.Module, optimizer: torch.optim.Optimizer, train: Dataset, val: Dataset, config: TrainConfig,
        on_epoch_end: Callable[[dict], None] = lambda record: None, first_epoch: int = 1) -> list[dict]:
    """Epochs ``first_epoch``..``config.epochs`` with the shared batch order, validating after every epoch."""
    device = next(model.parameters()).device
    # The uint8 training set lives on the device once; each step gathers its batch there.
    images = torch.from_numpy(train.images).to(device)
    labels = torch.from_numpy(train.labels).to(device)

    def step(indices: np.ndarray) -> tuple[float, int]:
        index = torch.from_numpy(indices).to(device)
        loss, correct = train_step(model, optimizer, images[index].float(), labels[index])
        return float(loss), int(correct)

    return run_epochs(step, lambda: evaluate(model, val, config.batch_size), len(train.labels), config,
                      on_epoch_end, first_epoch)
