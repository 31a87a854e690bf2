"""ImageNet weights for ResNet-18: torchvision's ``ResNet18_Weights.IMAGENET1K_V1`` checkpoint, found or fetched,
ported once to the neutral weights format, and handed to either backend as canonical arrays.

Both backends start from the same file: PyTorch code (``cnnlab_<backend>.pretrained.port_checkpoint``) turns the
``.pth`` into ``<name>.npz`` next to it, and every later run, in either framework, reads that ``.npz``.
"""

from __future__ import annotations

import os
from pathlib import Path
from collections.abc import Callable

import numpy as np

from shared.util.errors import UsageError
from shared.util.home import WEIGHTS
from shared.util.download import DownloadError, download, file_digest
from shared.formats.weights_io import WeightsError, load_weights, read_meta

CHECKPOINT = "resnet18-f37072fd.pth"  # torchvision's file name: the first 8 hex digits of its sha256
URL = f"https://download.pytorch.org/models/{CHECKPOINT}"
SHA256_PREFIX = "f37072fd"
IMAGENET_CLASSES = 1000


def torch_hub_copy() -> Path:
    """Where torchvision itself caches the file, so a user who ran torchvision before needs no download."""
    torch_home = Path(os.environ.get("TORCH_HOME") or Path.home() / ".cache" / "torch")
    return torch_home / "hub" / "checkpoints" / CHECKPOINT


def locate(home: Path, weights: Path | None, allow_download: bool) -> Path:
    """The checkpoint to start from: ``--weights``, else a cached copy, else a download if allowed."""
    if weights is not None:
        if not Path(weights).is_file():
            raise UsageError(f"--weights {weights}: no such file; pass torchvision's {CHECKPOINT} or a cnnlab "
                             f"resnet18 weights.npz")
        return Path(weights)
    ours = home / WEIGHTS / CHECKPOINT
    for candidate in (ours, torch_hub_copy()):
        if candidate.is_file():
            return candidate
    if not allow_download:
        raise UsageError(f"ResNet-18 ImageNet weights not found. Put {CHECKPOINT} (from {URL}) at {ours}, pass "
                         f"--weights PATH, or add --download")
    try:
        return download(URL, ours, "sha256", SHA256_PREFIX)
    except DownloadError as error:
        raise UsageError(str(error)) from None


def backbone_weights(checkpoint: Path, spec, port_checkpoint: Callable[[Path, Path], None], home: Path) -> dict:
    """Canonical arrays for every ResNet-18 parameter except the head, from a ``.pth`` (ported on first use) or a
    cnnlab ``.npz``. ``spec`` is the model being built; its head (``fc``) keeps its fresh initial weights.
    A port is cached under ``home/weights`` by the checkpoint's content, never written beside the user's file."""
    checkpoint = Path(checkpoint)
    if checkpoint.suffix == ".pth":
        digest = file_digest(checkpoint, "sha256")
        if checkpoint.name == CHECKPOINT and not digest.startswith(SHA256_PREFIX):
            raise UsageError(f"{checkpoint}: sha256 is {digest}, torchvision publishes {SHA256_PREFIX}...; the file "
                             f"is damaged: delete it and download again")
        ported = Path(home) / WEIGHTS / f"{checkpoint.stem}-{digest[:8]}.npz"
        if not ported.is_file():
            port_checkpoint(checkpoint, ported)
        checkpoint = ported
    try:
        meta = read_meta(checkpoint)
        if meta["arch"] != spec.name:
            raise WeightsError(f"{checkpoint} holds weights for {meta['arch']}, but this experiment needs "
                               f"{spec.name}; pass {spec.name} weights with --weights")
        from shared.model.registry import build_spec

        arrays = load_weights(checkpoint, build_spec(meta["arch"], meta["classes"], meta["image_size"]))
    except WeightsError as error:
        raise UsageError(str(error)) from None
    return {name: np.asarray(value) for name, value in arrays.items() if not name.startswith("fc.")}
