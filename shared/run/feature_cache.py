"""Frozen-backbone features, computed once and kept on disk.

When an experiment freezes the first layers of a model (``flowers-resnet18`` trains only ``fc``) and uses no
augmentation, the frozen part maps each image to the same features in every epoch: its BatchNorms stay in inference
mode in both backends (``freeze``). Training the trainable tail on those features, computed once, gives the same
steps as pushing every image through the backbone every epoch, at the cost of the head alone.

The features live in ``$CNNLAB_HOME/features/``, one ``.npz`` per key. The key is a sha256 over everything the
features depend on: the framework, the architecture and where it is cut, the backbone's weights, the images (train
and validation, in order), the image size and the precision. Beside the features, the file keeps the key and a sha256
of the feature arrays. A file that cannot be read, belongs to another key, has a row count other than its part's
image count, or whose arrays no longer match their checksum is computed again, with a warning, and written over.

The cache only saves time: when it cannot be written (a read-only or misplaced folder, a full disk), the run warns
once and trains on the features it just computed.
"""

from __future__ import annotations

import hashlib
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from collections.abc import Callable

import numpy as np
from shared.util import progress

from shared.util.atomic import atomic_path
from shared.training.backend import Backend
from shared.training.config import TrainConfig
from shared.data.dataset import Dataset
from shared.util.home import FEATURES, cnnlab_home
from shared.model.shapes import parameters
from shared.model.specs import ModelSpec

FORMAT = 2  # part of the key: a change to what is stored makes earlier files stale (2: with a checksum)
PARTS = ("train", "val")


@dataclass(frozen=True)
class FeatureSets:
    train: Dataset  # the training set with each image replaced by its backbone features
    val: Dataset
    path: Path  # the cache file
    loaded: bool  # read from the cache (else computed now)
    seconds: float  # spent hashing, loading or computing
    stored: bool = True  # the cache file holds these features (False: it could not be written; a warning said why)


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


def _add_field(digest, data) -> None:
    """Length-prefixed, so no two fields can run into each other."""
    data = memoryview(data).cast("B")
    digest.update(len(data).to_bytes(8, "little"))
    digest.update(data)


def _add_array(digest, array: np.ndarray) -> None:
    """The dtype and shape too, so the same bytes in another shape hash differently."""
    array = np.ascontiguousarray(array)  # hashlib reads contiguous buffers only
    _add_field(digest, f"{array.dtype.str}{array.shape}".encode())
    _add_field(digest, array)


def cache_key(framework: str, spec: ModelSpec, first_trainable: str, backbone_weights: dict[str, np.ndarray],
              images: tuple[np.ndarray, ...], precision: str) -> str:
    """sha256 over what the features depend on."""
    digest = hashlib.sha256()
    _add_field(digest, f"{FORMAT}|{framework}|{spec.name}|{first_trainable}|{spec.image_size}|{precision}".encode())
    for name in sorted(backbone_weights):
        _add_field(digest, name.encode())
        _add_array(digest, backbone_weights[name])
    for part in images:
        _add_array(digest, part)
    return digest.hexdigest()


def features_checksum(features: dict[str, np.ndarray]) -> str:
    """sha256 over the parts' names and arrays: stored with them, so a file whose values changed after it was
    written (a flipped bit, an edit) reads as damaged instead of as a hit that silently shifts the run."""
    digest = hashlib.sha256()
    for part in PARTS:
        _add_field(digest, part.encode())
        _add_array(digest, features[part])
    return digest.hexdigest()


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _read(path: Path) -> tuple[str, str, dict[str, np.ndarray]] | None:
    """(key, checksum, features) as stored in ``path``; None when there is no file there."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return str(archive["key"]), str(archive["checksum"]), {part: archive[part] for part in PARTS}
    except (FileNotFoundError, NotADirectoryError):
        return None  # nothing cached yet, or the features folder is a file (the write warns about that, once)


def _problem(checksum: str, features: dict[str, np.ndarray], images: dict[str, np.ndarray]) -> str | None:
    """Why stored features of the right key cannot stand in for ``images``' features, or None when they can."""
    for part in PARTS:
        array = features[part]
        if array.dtype.kind != "f" or array.ndim < 2:
            return f"its {part} features are {array.dtype} of shape {array.shape}, not float rows"
        if len(array) != len(images[part]):
            return f"it holds {len(array)} {part} rows for {len(images[part])} images"
    if checksum != features_checksum(features):
        return "its features do not match their checksum"
    return None


def _load(path: Path, key: str, images: dict[str, np.ndarray]) -> dict[str, np.ndarray] | None:
    """The cached features of ``images`` (part -> images), or None when the file is missing, unreadable, not this
    key's or damaged; each reason but a missing file warns."""
    try:
        stored = _read(path)
    except Exception as error:  # noqa: BLE001 - any damage (truncation, bad CRC, a missing entry such as an old
        # file's checksum, a folder at the path, no permission to read) means: compute again
        _warn(f"{path} cannot be read ({type(error).__name__}: {error}); computing the features again")
        return None
    if stored is None:
        return None
    stored_key, checksum, features = stored
    if stored_key != key:  # the name holds only the key's first 16 hex digits
        _warn(f"{path} holds another key's features; computing them again")
        return None
    problem = _problem(checksum, features, images)
    if problem is not None:
        _warn(f"{path} is damaged ({problem}); computing the features again")
        return None
    return features


def _store(path: Path, key: str, features: dict[str, np.ndarray]) -> bool:
    """Write the cache file; True when it was written. The cache only saves time, so a folder that cannot be
    made or written, or a full disk, warns and lets the run go on; ``atomic_path`` removes the partial file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as part, open(part, "wb") as handle:
            # the ignore: numpy's stub types **kwds as if one of them could be its allow_pickle flag
            np.savez(handle, key=np.array(key), checksum=np.array(features_checksum(features)),
                     **features)  # type: ignore[arg-type]
    except OSError as error:
        _warn(f"the feature cache {path} could not be written ({type(error).__name__}: {error}); the run continues "
              f"without it")
        return False
    return True


def _compute(compute: Callable[[np.ndarray, Callable[[int], None]], np.ndarray],
             images: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every part through the backbone, with one progress bar over all their images."""
    total = sum(len(part) for part in images.values())
    with progress.bar(total=total, unit="image", desc="backbone features", leave=False, dynamic_ncols=True) as bar:
        return {part: compute(part_images, bar.update) for part, part_images in images.items()}


def feature_sets(backend: Backend, model, spec: ModelSpec, first_trainable: str, train: Dataset, val: Dataset,
                 config: TrainConfig) -> FeatureSets:
    """``train`` and ``val`` with their images replaced by the backbone's features (labels, class names and files
    kept), read from the cache or computed now and cached (when the cache can be written). ``model`` holds the weights
    the run trains from."""
    started = time.perf_counter()
    weights = backend.get_weights(model, spec)
    backbone = {name: weights[name] for name in backbone_parameters(spec, first_trainable)}
    key = cache_key(backend.framework, spec, first_trainable, backbone, (train.images, val.images),
                    config.precision)
    path = cnnlab_home() / FEATURES / f"{backend.framework}-{spec.name}-{spec.image_size}px-{key[:16]}.npz"
    images = {"train": train.images, "val": val.images}
    features = _load(path, key, images)
    loaded = stored = features is not None
    if features is None:
        features = _compute(lambda part_images, on_batch: backend.backbone_features(
            model, spec, first_trainable, part_images, config.batch_size, on_batch), images)
        stored = _store(path, key, features)
    return FeatureSets(replace(train, images=features["train"]), replace(val, images=features["val"]), path, loaded,
                       time.perf_counter() - started, stored)
