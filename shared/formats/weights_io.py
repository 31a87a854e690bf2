"""The framework-neutral weights file: one ``.npz`` that either backend reads and writes.

Format (version 1):
- one float32 array per parameter, keyed by its canonical name (``shared.model.shapes.parameters``) and stored in the
  canonical PyTorch layout: conv (out, in, kh, kw), Linear (out, in) with inputs in (C, H, W) flatten order;
- BatchNorm running statistics as ``<layer>.running_mean`` and ``<layer>.running_var``;
- ``__cnnlab__``: a JSON string with the format version, the architecture name, classes and image size, so a file
  for another architecture is refused with a message instead of a shape error deep inside a backend.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from shared.formats.readable import reading
from shared.util.atomic import atomic_path
from shared.util.errors import WeightsError
from shared.model.shapes import parameters
from shared.model.specs import ModelSpec

FORMAT_VERSION = 1
META_KEY = "__cnnlab__"


def save_weights(path: Path, spec: ModelSpec, weights: dict[str, np.ndarray]) -> Path:
    """Write ``weights`` (canonical layout) atomically: a crash leaves the old file or none, never half a file."""
    path = Path(path)
    _check_complete(spec, weights, str(path))
    meta = {"format_version": FORMAT_VERSION, "arch": spec.name, "classes": spec.classes,
            "image_size": spec.image_size}
    arrays = {name: np.asarray(value, dtype=np.float32) for name, value in weights.items()}
    arrays[META_KEY] = np.array(json.dumps(meta))
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as part, open(part, "wb") as handle:
        # a file object, because np.savez would append ".npz" to a path. The ignore: numpy's stub types **kwds as if
        # one of them could be its allow_pickle flag
        np.savez(handle, **arrays)  # type: ignore[arg-type]
    return path


def read_meta(path: Path) -> dict:
    """The metadata of a weights file, or ``WeightsError`` if the file is missing or not a cnnlab weights file."""
    return _open(Path(path))[0]


def load_weights(path: Path, spec: ModelSpec) -> dict[str, np.ndarray]:
    """Canonical name -> array, checked against ``spec`` (architecture, classes, every shape)."""
    path = Path(path)
    meta, arrays = _open(path)
    if meta["arch"] != spec.name or meta["classes"] != spec.classes:
        raise WeightsError(f"{path} holds weights for {meta['arch']} with {meta['classes']} classes, but the model "
                           f"is {spec.name} with {spec.classes} classes; pass weights saved for {spec.name}")
    _check_complete(spec, arrays, str(path))
    return arrays


def _open(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist; expected a cnnlab .npz written by save_weights "
                           f"(a run directory's weights.npz)")
    with reading(path, "a cnnlab .npz weights file"), np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    if META_KEY not in arrays:
        raise WeightsError(f"{path} has no {META_KEY} entry, so it was not written by cnnlab; "
                           f"convert it with shared.formats.weights_io.save_weights")
    meta = json.loads(str(arrays.pop(META_KEY)))
    if meta.get("format_version") != FORMAT_VERSION:
        raise WeightsError(f"{path} uses weights format {meta.get('format_version')}, this cnnlab reads "
                           f"format {FORMAT_VERSION}")
    return meta, arrays


def _check_complete(spec: ModelSpec, weights: dict[str, np.ndarray], where: str) -> None:
    expected = {param.name: param.shape for param in parameters(spec)}
    missing = sorted(set(expected) - set(weights))
    extra = sorted(set(weights) - set(expected))
    if missing or extra:
        raise WeightsError(f"{where} does not match {spec.name}: missing {missing[:5]}, unexpected {extra[:5]}")
    for name, shape in expected.items():
        if tuple(weights[name].shape) != shape:
            raise WeightsError(f"{where}: {name} has shape {tuple(weights[name].shape)}, {spec.name} needs {shape}")
