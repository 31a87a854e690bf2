"""PyTorch weights <-> the canonical layout. PyTorch *is* the canonical layout, so no array is permuted here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from shared.formats.readable import reading
from shared.util.atomic import atomic_path
from shared.model.shapes import parameters
from shared.model.specs import ModelSpec

# PyTorch-only bookkeeping that the neutral format does not carry; a freshly loaded model starts it at zero.
_TORCH_ONLY_SUFFIX = "num_batches_tracked"


def get_weights(model: nn.Module, spec: ModelSpec) -> dict[str, np.ndarray]:
    state = model.state_dict()
    return {param.name: state[param.name].detach().cpu().numpy().copy() for param in parameters(spec)}


def set_weights(model: nn.Module, spec: ModelSpec, weights: dict[str, np.ndarray]) -> None:
    state = model.state_dict()
    expected = {param.name for param in parameters(spec)}
    unexpected_in_model = {name for name in state if name not in expected and not name.endswith(_TORCH_ONLY_SUFFIX)}
    assert not unexpected_in_model, f"model has parameters the spec does not name: {sorted(unexpected_in_model)}"
    with torch.no_grad():
        for name in expected:
            value = torch.from_numpy(np.asarray(weights[name]))
            assert state[name].shape == value.shape, \
                f"{name}: model {tuple(state[name].shape)}, got {tuple(value.shape)}"
            state[name].copy_(value)
        for name, value in state.items():
            if name.endswith(_TORCH_ONLY_SUFFIX):
                value.zero_()


def save_checkpoint(model: nn.Module, path: Path) -> None:
    """The native checkpoint: a plain ``state_dict``, loadable with ``torch.load(path, weights_only=True)``."""
    with atomic_path(path) as part:
        torch.save(model.state_dict(), part)


def load_checkpoint(model: nn.Module, path: Path) -> None:
    """The native checkpoint back into a model built from the same spec."""
    with reading(path, "a PyTorch checkpoint (a state_dict saved by cnnlab_torch)"):
        state = torch.load(path, map_location=next(model.parameters()).device, weights_only=True)
        model.load_state_dict(state)
