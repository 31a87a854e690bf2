"""An image folder (one subfolder per class, as torchvision's ``ImageFolder`` reads it) decoded once into uint8.

Both backends train on the same pixels because neither decodes images: this module resizes every image once, with
Pillow, and keeps the result in a cache keyed by the source files and the size. A changed folder (a file added,
removed or rewritten) or another ``--image-size`` gets a new cache entry.

Unreadable images are skipped with a warning that names each one; the run reports how many (``skipped`` in its
metrics), so a few corrupt files in a large folder do not stop a lab, and none goes unnoticed. Folders that cannot
train a classifier (one class) or whose decoded images cannot fit in memory are refused before anything is decoded.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from shared.util import progress

from shared.util.atomic import atomic_path
from shared.util.errors import DataError, UsageError
from shared.data.dataset import Dataset

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")  # torchvision's IMG_EXTENSIONS


def visible(name: str) -> bool:
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
    if root.is_file():
        raise DataError(f"data folder {root} is a file, not a folder; expected a folder with one subfolder of images "
                        f"per class")
    if not root.is_dir():
        raise UsageError(f"data folder {root} does not exist; expected a folder with one subfolder of images per "
                         f"class (pass it with --data, or use --download)")
    class_dirs = sorted(path for path in root.iterdir() if path.is_dir() and visible(path.name))
    if not class_dirs:
        raise UsageError(f"data folder {root} has no class subfolders; expected one subfolder of images per class, "
                         f"e.g. {root}/daisy/*.jpg")
    files, labels = [], []
    for label, class_dir in enumerate(class_dirs):
        images = sorted(path.relative_to(root) for path in class_dir.rglob("*")
                        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()
                        and all(visible(part) for part in path.relative_to(root).parts))
        if not images:
            raise UsageError(f"class folder {class_dir} has no images (looked for {', '.join(IMAGE_SUFFIXES)}); "
                             f"add images or remove the folder")
        files += images
        labels += [label] * len(images)
    if len(class_dirs) == 1:
        raise DataError(f"data folder {root} has one class subfolder ({class_dirs[0].name}); a classifier needs at "
                        f"least 2 classes: add a subfolder of images for each other class")
    return FolderListing(root, tuple(path.name for path in class_dirs), tuple(files), tuple(labels))


# Part of the decoded cache's name: a change to what decode_image computes decodes every folder again
DECODER_VERSION = 3  # 2: EXIF orientation applied; 3: images above MAX_IMAGE_PIXELS skipped


# The largest image decoded, in pixels: Pillow's own decompression-bomb bound (89.5 MP, a 24-bit 256 MiB image)
MAX_IMAGE_PIXELS = 89_478_485


class ImageTooLarge(ValueError):
    """An image above ``MAX_IMAGE_PIXELS``: skipped, named, like a corrupt one."""


def decode_image(path: Path | BinaryIO, image_size: int) -> np.ndarray:
    """An image file, or an open binary file (an upload), as RGB uint8 (S, S, 3): turned upright by its EXIF
    orientation (as a phone's photo is shown), converted from any mode (palette, greyscale, RGBA, CMYK, 16-bit),
    resized to S x S with bilinear filtering and antialiasing (what torchvision's ``Resize((S, S))`` does on PIL
    images). Training, evaluation and ``predict`` all decode here."""
    from PIL import Image, ImageOps

    with warnings.catch_warnings():
        # Pillow warns above its bound and raises above twice it: one clear refusal at the bound instead
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            opened = Image.open(path)
        except Image.DecompressionBombError:
            raise ImageTooLarge(f"above twice the {MAX_IMAGE_PIXELS / 1e6:.0f} MP bound on an image's size; shrink "
                                f"it first") from None
    with opened as original:
        width, height = original.size
        if width * height > MAX_IMAGE_PIXELS:
            raise ImageTooLarge(f"{width}x{height} pixels ({width * height / 1e6:.0f} MP) is above the "
                                f"{MAX_IMAGE_PIXELS / 1e6:.0f} MP bound on an image's size (decoded, it would take "
                                f"{3 * width * height / 2**20:,.0f} MiB, and more while it is resized); shrink it "
                                f"first")
        image = ImageOps.exif_transpose(original)
        if image.mode == "P" and "transparency" in image.info:
            image = image.convert("RGBA")  # Pillow warns when a palette with transparency goes straight to RGB
        image = _to_8_bit(image).convert("RGB").resize((image_size, image_size), Image.Resampling.BILINEAR)
        return np.asarray(image, dtype=np.uint8)


def _to_8_bit(image):
    """Greyscale deeper than 8 bits as 8-bit "L". Pillow's ``convert("RGB")`` clips these modes to 0..255 instead
    of scaling them, which turns a 16-bit PNG almost all white. Float images are only read in 0..1 or 0..255: any
    other range has no meaning we could guess, so it raises (and the image is skipped, named)."""
    from PIL import Image

    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        values = np.asarray(image).astype(np.float64) / 257  # 65535 / 257 = 255 exactly
    elif image.mode == "F":
        values = np.asarray(image, dtype=np.float64)
        if not np.isfinite(values).all() or values.min() < 0 or values.max() > 255:
            raise ValueError(f"float image with values from {values.min()} to {values.max()}; expected 0..1 or "
                             f"0..255")
        values = values * 255 if values.max() <= 1 else values
    else:
        return image
    return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8))


def available_memory() -> int:
    """Bytes the system can hand out without swapping: Linux's MemAvailable, else all physical memory."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # reported in kB
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_memory(listing: FolderListing, image_size: int) -> None:
    """Every image is held decoded in memory: refuse a size that cannot fit before spending minutes decoding."""
    needed, available = len(listing.files) * image_size * image_size * 3, available_memory()
    if needed > available:
        raise UsageError(f"--image-size {image_size}: the {len(listing.files)} images in {listing.root} decoded at "
                         f"{image_size}x{image_size} need {needed / 2**30:.1f} GiB of memory, and "
                         f"{available / 2**30:.1f} GiB is available; pass a smaller --image-size")


def load_image_folder(root: Path, image_size: int, cache_dir: Path, name: str = "image folder",
                      listing: FolderListing | None = None) -> Dataset:
    """The folder as a Dataset, from the cache when the folder has not changed since it was decoded. ``listing``:
    the folder already listed by the caller (listing stats every file)."""
    listing = listing or list_image_folder(root)
    check_memory(listing, image_size)
    cache = Path(cache_dir) / (f"{Path(root).resolve().name}-{image_size}px-{listing.fingerprint(image_size)}"
                               f"-d{DECODER_VERSION}.npz")
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as archive:
            if "files" in archive:  # a cache written before file names were kept is decoded again
                meta = json.loads(str(archive["meta"]))
                return Dataset(name, archive["images"], archive["labels"], tuple(meta["class_names"]),
                               skipped=tuple(meta["skipped"]), files=tuple(str(file) for file in archive["files"]))
    # Decoded straight into one array: a list of images and then np.stack would need twice the memory.
    images = np.empty((len(listing.files), image_size, image_size, 3), dtype=np.uint8)
    labels: list[int] = []
    files: list[str] = []
    skipped: list[str] = []
    for relative, label in progress.bar(list(zip(listing.files, listing.labels)), unit="image", leave=False,
                                        desc=f"decoding {root} at {image_size}px"):
        try:
            images[len(labels)] = decode_image(listing.root / relative, image_size)
            labels.append(label)
            files.append(relative.as_posix())
        except Exception as error:  # Pillow raises many types for broken files; each is a skip, named
            skipped.append(str(relative))
            print(f"warning: skipping unreadable image {listing.root / relative} ({type(error).__name__}: {error})",
                  file=sys.stderr)
    if not labels:
        raise UsageError(f"no image in {root} could be read; expected JPEG or PNG files in class subfolders")
    dataset = Dataset(name, images[:len(labels)], np.array(labels, dtype=np.int64), listing.class_names,
                      skipped=tuple(skipped), files=tuple(files))
    cache.parent.mkdir(parents=True, exist_ok=True)
    meta = json.dumps({"root": str(root), "class_names": listing.class_names, "skipped": skipped})
    with atomic_path(cache) as part, open(part, "wb") as handle:
        np.savez(handle, images=dataset.images, labels=dataset.labels, files=np.array(files), meta=np.array(meta))
    return dataset
