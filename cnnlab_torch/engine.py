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


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """Adam with every hyperparameter from the config (PyTorch's formula is the reference one)."""
    trainable = [param for param in model.parameters() if param.requires_grad]
    return torch.optim.Adam(trainable, lr=config.lr, betas=(config.beta1, config.beta2), eps=config.eps,
                            weight_decay=config.weight_decay)


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, images: torch.Tensor,
               labels: torch.Tensor) -> tuple[float, int]:
    """One optimizer step on a batch of float NHWC images; returns the batch's mean loss and correct count."""
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
    return loss.item(), int(correct)


def evaluate(model: nn.Module, data: Dataset, batch_size: int) -> tuple[float, float]:
    """Mean cross-entropy and accuracy in inference mode."""
    logits = predict_logits(model, data.images, batch_size)
    return cross_entropy(logits, data.labels), accuracy(logits, data.labels)


def fit(model: nn.Module, train: Dataset, val: Dataset, config: TrainConfig,
        on_epoch_end: Callable[[dict], None] = lambda record: None) -> list[dict]:
    """Train for ``config.epochs`` with the shared batch order, validating after every epoch."""
    device = next(model.parameters()).device
    optimizer = make_optimizer(model, config)
    # The uint8 training set lives on the device once; each step gathers its batch there.
    images = torch.from_numpy(train.images).to(device)
    labels = torch.from_numpy(train.labels).to(device)

    def step(indices: np.ndarray) -> tuple[float, int]:
        index = torch.from_numpy(indices).to(device)
        return train_step(model, optimizer, images[index].float(), labels[index])

    return run_epochs(step, lambda: evaluate(model, val, config.batch_size), len(train.labels), config,
                      on_epoch_end)
