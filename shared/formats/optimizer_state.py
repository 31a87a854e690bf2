"""Adam's state in the framework-neutral format, so that a run started in one framework can continue in the other.

Both backends run the same update rule (``torch.optim.Adam``'s), so the state is the same numbers in both: the step
count and, for every trainable parameter, the first and second moments. The file is an ``.npz`` like
``weights.npz``: ``<canonical name>.exp_avg`` and ``<canonical name>.exp_avg_sq`` in the canonical (PyTorch) layout,
and ``__cnnlab__`` with the format version, the architecture, the step and the hyperparameters. Layout permutations
are exact, so a same-framework resume from this file is as exact as one from the native file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from shared.formats.readable import reading
from shared.util.atomic import atomic_path
from shared.util.errors import WeightsError
from shared.model.specs import ModelSpec

FORMAT_VERSION = 1
META_KEY = "__cnnlab__"
MOMENTS = ("exp_avg", "exp_avg_sq")  # torch.optim.Adam's names: m and v


@dataclass
class OptimizerState:
    step: int  # optimizer steps taken; Adam's bias corrections depend on it
    moments: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # name -> (m, v), canonical

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {f"{name}.{kind}": value for name, pair in self.moments.items() for kind, value in zip(MOMENTS, pair)}


def save_optimizer_state(path: Path, spec: ModelSpec, state: OptimizerState, hyperparameters: dict) -> Path:
    meta = {"format_version": FORMAT_VERSION, "optimizer": "adam (torch.optim.Adam's rule)", "arch": spec.name,
            "classes": spec.classes, "step": int(state.step), "hyperparameters": hyperparameters}
    arrays = {name: np.asarray(value, dtype=np.float32) for name, value in state.to_arrays().items()}
    arrays[META_KEY] = np.array(json.dumps(meta))
    with atomic_path(Path(path)) as part, open(part, "wb") as handle:
        np.savez(handle, **arrays)  # type: ignore[arg-type]  # numpy's stub: **kwds as if one were allow_pickle
    return Path(path)


def load_optimizer_state(path: Path, spec: ModelSpec, trainable: list[str]) -> OptimizerState:
    """The state for ``trainable`` (canonical names, in order); every moment must be there with its weight's shape."""
    path = Path(path)
    with reading(path, "a cnnlab optimizer state (optimizer.npz)"):
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
        meta = json.loads(str(arrays.pop(META_KEY)))
    if meta.get("format_version") != FORMAT_VERSION or meta.get("arch") != spec.name:
        raise WeightsError(f"{path} holds optimizer state format {meta.get('format_version')} for "
                           f"{meta.get('arch')}, expected format {FORMAT_VERSION} for {spec.name}")
    moments = {}
    for name in trainable:
        try:
            moments[name] = tuple(arrays[f"{name}.{kind}"] for kind in MOMENTS)
        except KeyError:
            raise WeightsError(f"{path} has no Adam moments for {name}; it was saved for other trainable "
                               f"parameters") from None
    if len(moments) * len(MOMENTS) != len(arrays):
        extra = sorted(set(arrays) - {f"{name}.{kind}" for name in trainable for kind in MOMENTS})
        raise WeightsError(f"{path} holds moments for parameters that do not train here: {extra[:4]}")
    return OptimizerState(int(meta["step"]), moments)
