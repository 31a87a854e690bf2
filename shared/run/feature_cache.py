"""Frozen-backbone features, computed once and kept on disk.

When an experiment freezes the first layers of a model (``flowers-resnet18`` trains only ``fc``) and uses no
augmentation, the frozen part maps each image to the same features in every epoch: its BatchNorms stay in inference
mode in both backends (``freeze``). Training the trainable tail on those features, computed once, gives the same
steps as pushing every image through the backbone every epoch, at the cost of the head alone.

The features live in ``$CNNLAB_HOME/features/``, one ``.npz`` per key. The key is a sha256 over everything the
features depend on: the framework, the architecture and where it is cut, the backbone's weights, the images (train
and validation, in order), the image size and the precision. A file that cannot be read, or that belongs to another
key, is computed again.
"""

from __future__ import annotations

import hashlib
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
from shared.util import progress

from shared.util.atomic import atomic_path
from shared.training.backend import Backend
from shared.training.config import TrainConfig
from shared.data.dataset import Dataset
from shared.util.home import FEATURES, cnnlab_home
from shared.model.shapes import parameters
from shared.model.specs import ModelSpec

FORMAT = 1  # part of the key: a change to what is stored makes earlier files stale
PARTS = ("train", "val")


@dataclass(frozen=True)
class FeatureSets:
    train: Dataset  # the training set with each image replaced by its backbone features
    val: Dataset
    path: Path  # the cache file
    loaded: bool  # read from the cache (else computed now, and cached)
    seconds: float  # spent hashing, loading or computing


def first_trainable_layer(spec: ModelSpec, trainable_prefixes: tuple[str, ...] | None) -> str | None:
    """The top-level layer where training starts, when the model splits into a frozen backbone and a trainable
    tail: every layer before it is frozen or has no parameters, and every parameter from it on trains. None when it
    does not split so (everything trains, nothing does, a layer is half frozen, or a frozen layer follows a
    trainable one) or when the backbone has nothing frozen to save."""
    if trainable_prefixes is None:
        return None
    trains: dict[str, set[bool]] = {name: set() for name, _ in spec.layers}
    for param in parameters(spec):
        top = next(name for name in trains if param.name.startswith(f"{name}."))
        trains[top].add(param.name.startswith(trainable_prefixes))
    names = [name for name, _ in spec.layers]
    first = next((index for index, name in enumerate(names) if True in trains[name]), None)
    if first is None or any(False in trains[name] for name in names[first:]):
        return None  # nothing trains, or a frozen layer would still run after a trainable one every epoch
    frozen_before = any(False in trains[name] for name in names[:first])
    return names[first] if frozen_before else None  # parameterless layers alone are not worth a cache


def backbone_parameters(spec: ModelSpec, first_trainable: str) -> list[str]:
    """The canonical names of the frozen backbone's weights and statistics: the layers before ``first_trainable``."""
    names = [name for name, _ in spec.layers]
    backbone = tuple(f"{name}." for name in names[:names.index(first_trainable)])
    return [param.name for param in parameters(spec) if param.name.startswith(backbone)]


def cache_key(framework: str, spec: ModelSpec, first_trainable: str, backbone_weights: dict[str, np.ndarray],
              images: tuple[np.ndarray, ...], precision: str) -> str:
    """sha256 over what the features depend on. Each field is length-prefixed, so no two fields can run into each
    other; arrays add their dtype and shape, so the same bytes in another shape are another key."""
    digest = hashlib.sha256()

    def add(data) -> None:
        data = memoryview(data).cast("B")
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)

    def add_array(array: np.ndarray) -> None:
        array = np.ascontiguousarray(array)  # hashlib reads contiguous buffers only
        add(f"{array.dtype.str}{array.shape}".encode())
        add(array)

    add(f"{FORMAT}|{framework}|{spec.name}|{first_trainable}|{spec.image_size}|{precision}".encode())
    for name in sorted(backbone_weights):
        add(name.encode())
        add_array(backbone_weights[name])
    for part in images:
        add_array(part)
    return digest.hexdigest()


def _load(path: Path, key: str) -> dict[str, np.ndarray] | None:
    """The cached features, or None when the file is missing, unreadable or not this key's."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as archive:
            features = {part: archive[part] for part in PARTS}
            stored_key = str(archive["key"])
    except Exception as error:  # noqa: BLE001 - any damage (truncation, bad CRC, missing entry) means: compute again
        print(f"warning: {path} cannot be read ({type(error).__name__}: {error}); computing the features again",
              file=sys.stderr)
        return None
    if stored_key != key:  # the name holds only the key's first 16 hex digits
        print(f"warning: {path} holds another key's features; computing them again", file=sys.stderr)
        return None
    return features


def _compute(compute: Callable[[np.ndarray, Callable[[int], None]], np.ndarray],
             images: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every part through the backbone, with one progress bar over all their images."""
    total = sum(len(part) for part in images.values())
    with progress.bar(total=total, unit="image", desc="backbone features", leave=False, dynamic_ncols=True) as bar:
        return {part: compute(part_images, bar.update) for part, part_images in images.items()}


def feature_sets(backend: Backend, model, spec: ModelSpec, first_trainable: str, train: Dataset, val: Dataset,
                 config: TrainConfig) -> FeatureSets:
    """``train`` and ``val`` with their images replaced by the backbone's features (labels, class names and files
    kept), read from the cache or computed now and cached. ``model`` holds the weights the run trains from."""
    started = time.perf_counter()
    weights = backend.get_weights(model, spec)
    backbone = {name: weights[name] for name in backbone_parameters(spec, first_trainable)}
    key = cache_key(backend.framework, spec, first_trainable, backbone, (train.images, val.images),
                    config.precision)
    path = cnnlab_home() / FEATURES / f"{backend.framework}-{spec.name}-{spec.image_size}px-{key[:16]}.npz"
    images = {"train": train.images, "val": val.images}
    features = _load(path, key)
    loaded = features is not None
    if not loaded:
        features = _compute(lambda part_images, on_batch: backend.backbone_features(
            model, spec, first_trainable, part_images, config.batch_size, on_batch), images)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as part, open(part, "wb") as handle:
            np.savez(handle, key=np.array(key), **features)
    return FeatureSets(replace(train, images=features["train"]), replace(val, images=features["val"]), path, loaded,
                       time.perf_counter() - started)
