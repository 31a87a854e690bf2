"""PyTorch models built from ``shared.model.specs``. Module names follow the spec, so ``state_dict`` keys are the
canonical parameter names (for ``resnet18``, exactly torchvision's)."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch
from torch import nn

from cnnlab_torch.device import CPU
from cnnlab_torch.distributed import current_world, sum_over_processes, summed
from cnnlab_torch.precision import autocast, model_precision, variable_dtype
from shared.training.precision import DEFAULT_PRECISION
from shared.model.rules import layer_rule
from shared.model.specs import (AvgPool2d, BatchNorm2d, Conv2d, Flatten, GlobalAvgPool2d, Layer, Linear, MaxPool2d,
                                ModelSpec, NamedLayers, Normalize, ReLU, ReLU6, Residual, Sequential)


class NormalizeNHWC(nn.Module):
    """0-255 NHWC pixels -> normalised NCHW. Mean and std are Python constants, not buffers, so the module adds no
    ``state_dict`` entries and torchvision checkpoints load unchanged."""

    def __init__(self, mean, std):
        super().__init__()
        self.mean, self.std = tuple(mean), tuple(std)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(self.mean, dtype=images.dtype, device=images.device)
        std = torch.tensor(self.std, dtype=images.dtype, device=images.device)
        return ((images / 255.0 - mean) / std).permute(0, 3, 1, 2)


class SyncedBatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` whose training statistics are those of the global batch when several processes train
    (``cnnlab_torch.distributed``), so a distributed run normalises as one process does; alone it is BatchNorm2d.
    ``nn.SyncBatchNorm`` does this on GPUs only (it refuses CPU tensors in torch 2.14), and the tests run on CPUs:
    this one is the same code on both. Running variance: PyTorch's, unbiased over the global batch.

    Only a model built while several processes train has it (``build_model`` converts its BatchNorms, as
    ``nn.SyncBatchNorm.convert_sync_batchnorm`` does); a one-process model keeps torch's own ``nn.BatchNorm2d``,
    because tools that match layers by exact type (converters such as nobuco) know no subclass."""

    @classmethod
    def convert_synced_batchnorm(cls, module: nn.Module) -> nn.Module:
        """``module`` with every ``nn.BatchNorm2d`` in its tree replaced by a ``SyncedBatchNorm2d`` that holds the
        same Parameter and buffer objects (so an optimizer made before still updates them), hyperparameters and
        training mode. Changes ``module`` in place and returns it, or the replacement when ``module`` itself is a
        BatchNorm2d. Exact type only: a subclass keeps its own forward. A list of modules taken before
        (``freeze``'s ``frozen_batchnorms``) would still name the replaced ones: convert before ``freeze``."""
        converted = module
        if type(module) is nn.BatchNorm2d:
            # on the meta device: nothing allocated, and every tensor is replaced by the original's just below
            converted = cls(module.num_features, module.eps, module.momentum, module.affine,
                            module.track_running_stats, device="meta")
            for name in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
                setattr(converted, name, getattr(module, name))  # None stays None (affine, track_running_stats)
            converted.train(module.training)
        for name, child in module.named_children():
            converted.add_module(name, cls.convert_synced_batchnorm(child))
        return converted

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if not (self.training and current_world().distributed):
            return super().forward(images)
        if images.dtype in (torch.float16, torch.bfloat16):  # statistics in float32, as autocast runs batch_norm
            images = images.float()
        count = summed(images.new_tensor(images.numel() / images.shape[1]))
        mean = sum_over_processes(images.sum((0, 2, 3))) / count
        centred = images - mean[None, :, None, None]
        variance = sum_over_processes((centred * centred).sum((0, 2, 3))) / count
        # set in every BatchNorm a spec builds: it tracks running statistics with the spec's momentum
        assert self.running_mean is not None and self.running_var is not None and self.momentum is not None
        assert self.num_batches_tracked is not None
        with torch.no_grad():
            self.running_mean.mul_(1 - self.momentum).add_(self.momentum * mean)
            self.running_var.mul_(1 - self.momentum).add_(self.momentum * variance * count / (count - 1))
            self.num_batches_tracked.add_(1)
        scale = self.weight / torch.sqrt(variance + self.eps)
        return centred * scale[None, :, None, None] + self.bias[None, :, None, None]


class ResidualModule(nn.Module):
    """A spec ``Residual``: ``after(main(x) + shortcut(x))``. Every child is registered on the block itself under its
    spec name, as torchvision's blocks hold theirs (``layer1.0.conv1``, ``features.2.conv``)."""

    def __init__(self, block: Residual):
        super().__init__()
        for name, layer in block.children():
            self.add_module(name, to_module(layer))
        self.main, self.shortcut, self.after = ([name for name, _ in path]
                                                for path in (block.main, block.shortcut, block.after))

    def _path(self, names: list[str], x: torch.Tensor) -> torch.Tensor:
        for name in names:
            x = self.get_submodule(name)(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._path(self.after, self._path(self.main, x) + self._path(self.shortcut, x))


def _sequential(layers: NamedLayers) -> nn.Sequential:
    return nn.Sequential(OrderedDict((name, to_module(layer)) for name, layer in layers))


@layer_rule("PyTorch module")
def to_module(layer: Layer) -> nn.Module:
    """One spec layer -> one PyTorch module. The spec already uses PyTorch's conventions."""


@to_module.register
def _(layer: Normalize) -> nn.Module:
    return NormalizeNHWC(layer.mean, layer.std)


@to_module.register
def _(layer: Conv2d) -> nn.Module:
    return nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel, layer.stride, layer.padding,
                     bias=layer.bias, groups=layer.groups)


@to_module.register
def _(layer: BatchNorm2d) -> nn.Module:
    return nn.BatchNorm2d(layer.channels, eps=layer.eps, momentum=layer.momentum)  # build_model syncs it


@to_module.register
def _(layer: ReLU) -> nn.Module:
    return nn.ReLU()


@to_module.register
def _(layer: ReLU6) -> nn.Module:
    return nn.ReLU6()


@to_module.register
def _(layer: MaxPool2d) -> nn.Module:
    return nn.MaxPool2d(layer.kernel, layer.stride, layer.padding)


@to_module.register
def _(layer: AvgPool2d) -> nn.Module:
    return nn.AvgPool2d(layer.kernel, layer.stride)


@to_module.register
def _(layer: GlobalAvgPool2d) -> nn.Module:
    return nn.AdaptiveAvgPool2d((1, 1))


@to_module.register
def _(layer: Flatten) -> nn.Module:
    return nn.Flatten()


@to_module.register
def _(layer: Linear) -> nn.Module:
    return nn.Linear(layer.in_features, layer.out_features, bias=layer.bias)


@to_module.register
def _(layer: Sequential) -> nn.Module:
    return _sequential(layer.layers)


@to_module.register
def _(layer: Residual) -> nn.Module:
    return ResidualModule(layer)


class SpecModel(nn.Module):
    """The spec's layers in order, registered under their spec names."""

    def __init__(self, spec: ModelSpec, precision: str = DEFAULT_PRECISION):
        super().__init__()
        self.spec_name = spec.name
        # a shared.training.precision name: the weights' dtype and the autocast of the forward
        self.precision = precision
        self.frozen_batchnorms: list[nn.Module] = []  # set by ``freeze``; they stay in eval mode
        for name, layer in spec.layers:
            self.add_module(name, to_module(layer))

    def train(self, mode: bool = True) -> SpecModel:
        super().train(mode)
        for module in self.frozen_batchnorms:
            module.eval()
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images
        for module in self.children():
            x = module(x)
        return x

    def forward_layers(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every top-level layer's output, for the parity suite's per-layer comparison."""
        outputs, x = {}, images
        for name, module in self.named_children():
            x = module(x)
            outputs[name] = x
        return outputs


def build_model(spec: ModelSpec, precision: str = DEFAULT_PRECISION, placement: torch.device = CPU) -> SpecModel:
    """The model on ``placement``, the device the backend selected, its weights in the precision's variable
    dtype. Its weights are PyTorch's defaults until ``set_weights`` loads the shared initial weights.

    When several processes train (``select_device`` joined them before any model is built), its BatchNorms are
    ``SyncedBatchNorm2d``, so every process normalises with the global batch's statistics; alone they stay torch's
    ``nn.BatchNorm2d``, which exporters and converters recognise. Here, not in ``parallel``: ``freeze``'s
    ``frozen_batchnorms`` and the optimizer are made after the build, so they hold the modules that train."""
    model = SpecModel(spec, precision)
    if current_world().distributed:
        SyncedBatchNorm2d.convert_synced_batchnorm(model)
    return model.to(placement, variable_dtype(precision))


def freeze(model: SpecModel, spec: ModelSpec, trainable_prefixes: tuple[str, ...]) -> list[str]:
    """Only parameters whose names start with one of ``trainable_prefixes`` train; returns their names.

    A frozen BatchNorm also keeps its running statistics: it stays in eval mode, which is what Keras does for a
    layer with ``trainable=False``. (``requires_grad=False`` alone would still update them in ``train()`` mode,
    and the two frameworks would drift apart after one epoch.)"""
    trainable = []
    for name, param in model.named_parameters():
        param.requires_grad = name.startswith(trainable_prefixes)
        if param.requires_grad:
            trainable.append(name)
    model.frozen_batchnorms = [module for name, module in model.named_modules()
                               if isinstance(module, nn.BatchNorm2d) and not f"{name}.".startswith(trainable_prefixes)]
    model.train(model.training)
    return trainable


def count_trainable(model: nn.Module) -> int:
    return sum(param.numel() for param in model.parameters() if param.requires_grad)


def trainable_params_by_layer(model: SpecModel, spec: ModelSpec) -> dict[str, int]:
    return {name: count_trainable(model.get_submodule(name)) for name, _ in spec.layers}


@torch.no_grad()
def layer_outputs(model: SpecModel, spec: ModelSpec, images: np.ndarray) -> dict[str, np.ndarray]:
    """Per-layer outputs in the canonical (NCHW) layout, in inference mode."""
    model.eval()
    outputs = model.forward_layers(torch.from_numpy(images).to(next(model.parameters()).device))
    return {name: outputs[name].cpu().numpy() for name, _ in spec.layers}


@torch.no_grad()
def predict_logits(model: nn.Module, images: np.ndarray, batch_size: int) -> np.ndarray:
    """float32 logits for uint8 or float NHWC images, in inference mode in the model's precision, batch by batch."""
    model.eval()
    precision = model_precision(model)  # a SpecModel's (DDP's wrapper and torch.compile's pass it on)
    device, dtype = next(model.parameters()).device, variable_dtype(precision)
    chunks = []
    with autocast(precision, device):
        for start in range(0, len(images), batch_size):
            logits = model(torch.from_numpy(images[start:start + batch_size]).to(device, dtype))
            chunks.append(logits.float().cpu().numpy())
    return np.concatenate(chunks)
