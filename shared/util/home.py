"""``$CNNLAB_HOME`` (default ``~/.cache/cnnlab``): where downloads, ported weights and caches live, and the names of
its folders, stated once here."""

from __future__ import annotations

import os
from pathlib import Path

from shared.util.errors import UsageError

WEIGHTS = "weights"  # the ImageNet ResNet-18 checkpoint and its ports to the neutral format (shared.formats.pretrained)
FEATURES = "features"  # frozen backbones' features (shared.run.feature_cache)
DECODED = "decoded"  # image folders decoded and resized once (shared.data.image_folder)
UNPACKED = "unpacked"  # archives of image folders, unpacked (shared.run.experiments)
FLOWERS = "flowers"  # the flowers dataset, downloaded (shared.data.flowers)


def cnnlab_home() -> Path:
    """$CNNLAB_HOME, else ~/.cache/cnnlab; a file there is a usage error that says what to do."""
    home = Path(os.environ.get("CNNLAB_HOME") or Path.home() / ".cache" / "cnnlab")
    if home.is_file():
        if os.environ.get("CNNLAB_HOME"):
            raise UsageError(f"CNNLAB_HOME={home} is a file; point it at a folder (or unset it)")
        raise UsageError(f"{home} is a file, but cnnlab keeps its cache there; move the file away, or set "
                         f"CNNLAB_HOME to a folder")
    return home
