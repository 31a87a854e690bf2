"""Porting torchvision's ResNet-18 checkpoint to the neutral weights format. Also a command, which the TensorFlow
backend runs in its own process: ``python -m cnnlab_torch.pretrained CHECKPOINT.pth OUT.npz``."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from shared.util.errors import EXIT_OK, EXIT_USAGE, UsageError, WeightsError
from shared.formats.pretrained import IMAGENET_CLASSES
from shared.model.registry import build_spec
from shared.formats.weights_io import save_weights

_TORCH_ONLY_SUFFIX = "num_batches_tracked"


def port_checkpoint(checkpoint: Path, neutral: Path) -> None:
    """torchvision ``resnet18`` state dict (``.pth``) -> cnnlab ``.npz``. The spec uses torchvision's parameter
    names and layouts, so the port only drops PyTorch's BatchNorm step counters."""
    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises RuntimeError, UnpicklingError, EOFError ... for a bad file
        raise UsageError(f"{checkpoint} is not a readable PyTorch checkpoint ({type(error).__name__}); "
                         f"expected torchvision's resnet18 state dict") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(value, torch.Tensor) for value in state.values()):
        held = type(state).__name__ if not isinstance(state, dict) else "dict with values that are not tensors"
        raise WeightsError(f"{checkpoint} holds a {held}, not a state dict; expected torchvision's resnet18 state "
                           f"dict (torch.save(model.state_dict(), PATH))")
    weights = {name: value.numpy() for name, value in state.items() if not name.endswith(_TORCH_ONLY_SUFFIX)}
    classes = int(weights["fc.weight"].shape[0]) if "fc.weight" in weights else IMAGENET_CLASSES
    try:
        save_weights(neutral, build_spec("resnet18", classes, 224), weights)
    except WeightsError as error:
        raise UsageError(f"{checkpoint} is not a resnet18 checkpoint: {error}") from None


def _command(argv: list[str]) -> int:
    try:
        port_checkpoint(Path(argv[0]), Path(argv[1]))
    except UsageError as error:
        print(f"cnnlab_torch.pretrained: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(_command(sys.argv[1:]))
