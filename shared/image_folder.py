"""An image folder (one subfolder per class, as torchvision's ``ImageFolder`` reads it) decoded once into uint8.

Both backends train on the same pixels because neither decodes images: this module resizes every image once, with
Pillow, and keeps the result in a cache keyed by the source files and the size. A changed folder (a file added,
removed or rewritten) or another ``--image-size`` gets a new cache entry.

Unreadable images are skipped with a warning that names each one; the run reports how many (``skipped`` in its
metrics), so a few corrupt files in a large folder do not stop a lab, and none goes unnoticed.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from shared.atomic import atomic_path
from shared.errors import UsageError
from shared.data import Dataset

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")  # torchvision's IMG_EXTENSIONS


def _visible(name: str) -> bool:
    """Notebook debris (``.ipynb_checkpoints``) and other hidden entries are not data."""
    return not name.startswith((".", "__"))


@dataclass(frozen=True)
class FolderListing:
    root: Path
    class_names: tuple[str, ...]
    files: tuple[Path, ...]  # relative to root
    labels: tuple[int, ...]

    def fingerprint(self, image_size: int) -> str:
        """Changes whenever a file is added, removed, renamed or rewritten, or the size changes."""
        digest = hashlib.sha256(f"size={image_size}".encode())
        for relative in self.files:
            status = (self.root / relative).stat()
            digest.update(f"{relative.as_posix()}|{status.st_size}|{status.st_mtime_ns}\n".encode())
        return digest.hexdigest()[:16]


def list_image_folder(root: Path) -> FolderListing:
    """Class names from the sorted subfolder names; files sorted within each class."""
    root = Path(root)
    if not root.is_dir():
        raise UsageError(f"data folder {root} does not exist; expected a folder with one subfolder of images per "
                         f"class (pass it with --data, or use --download)")
    class_dirs = sorted(path for path in root.iterdir() if path.is_dir() and _visible(path.name))
    if not class_dirs:
        raise UsageError(f"data folder {root} has no class subfolders; expected one subfolder of images per class, "
                         f"e.g. {root}/daisy/*.jpg")
    files, labels = [], []
    for label, class_dir in enumerate(class_dirs):
        images = sorted(path.relative_to(root) for path in class_dir.rglob("*")
                        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()
                        and all(_visible(part) for part in path.relative_to(root).parts))
        if not images:
            raise UsageError(f"class folder {class_dir} has no images (looked for {', '.join(IMAGE_SUFFIXES)}); "
                             f"add images or remove the folder")
        files += images
        labels += [label] * len(images)
    return FolderListing(root, tuple(path.name for path in class_dirs), tuple(files), tuple(labels))


def decode_image(path: Path, image_size: int) -> np.ndarray:
    """RGB uint8 (S, S, 3): converted from any mode, resized to S x S with bilinear filtering and antialiasing (what
    torchvision's ``Resize((S, S))`` does on PIL images)."""
    from PIL import Image

    with Image.open(path) as image:
        image = image.convert("RGB").resize((image_size, image_size), Image.Resampling.BILINEAR)
        return np.asarray(image, dtype=np.uint8)


def load_image_folder(root: Path, image_size: int, cache_dir: Path, name: str = "image folder") -> Dataset:
    """The folder as a Dataset, from the cache when the folder has not changed since it was decoded."""
    listing = list_image_folder(root)
    cache = Path(cache_dir) / f"{Path(root).resolve().name}-{image_size}px-{listing.fingerprint(image_size)}.npz"
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as archive:
            meta = json.loads(str(archive["meta"]))
            return Dataset(name, archive["images"], archive["labels"], tuple(meta["class_names"]),
                           skipped=tuple(meta["skipped"]))
    images, labels, skipped = [], [], []
    for relative, label in tqdm(list(zip(listing.files, listing.labels)), desc=f"decoding {root} at {image_size}px",
                                unit="image", leave=False):
        try:
            images.append(decode_image(listing.root / relative, image_size))
            labels.append(label)
        except Exception as error:  # Pillow raises many types for broken files; each is a skip, named
            skipped.append(str(relative))
            print(f"warning: skipping unreadable image {listing.root / relative} ({type(error).__name__}: {error})",
                  file=sys.stderr)
    if not images:
        raise UsageError(f"no image in {root} could be read; expected JPEG or PNG files in class subfolders")
    dataset = Dataset(name, np.stack(images), np.array(labels, dtype=np.int64), listing.class_names,
                      skipped=tuple(skipped))
    cache.parent.mkdir(parents=True, exist_ok=True)
    meta = json.dumps({"root": str(root), "class_names": listing.class_names, "skipped": skipped})
    with atomic_path(cache) as part, open(part, "wb") as handle:
        np.savez(handle, images=dataset.images, labels=dataset.labels, meta=np.array(meta))
    return dataset
