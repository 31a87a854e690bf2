"""The training state of a finished epoch, kept so that a kill at any moment loses at most the epoch in progress.

After epoch k, everything needed to continue goes into ``checkpoints/epoch-000k/`` of the model's run directory:
- the native model checkpoint (weights and BatchNorm statistics) and the native optimizer state;
- the same in the neutral format: ``weights.npz`` and ``optimizer.npz`` (Adam's step and both moments), which the
  other framework can continue from;
- ``state.json``: the epoch, the history so far and the seconds spent, written last.

The folder is written under a temporary name and renamed into place in one step, so it exists complete or not at
all; only then are older epochs removed. The batch order needs no saved state: it is drawn from (seed, epoch).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from shared.formats.rundir import CHECKPOINTS, STATE, write_json

_EPOCH_FOLDER = re.compile(r"^epoch-(\d{4,})$")


@dataclass(frozen=True)
class Checkpoint:
    folder: Path
    epoch: int
    framework: str  # which framework wrote the native files
    history: list[dict]
    seconds: float  # training seconds up to this epoch

    def path(self, name: str) -> Path:
        return self.folder / name


def commit(model_dir: Path, epoch: int, framework: str, history: list[dict], seconds: float,
           write_files: Callable[[Path], None]) -> Checkpoint:
    """Write epoch ``epoch``'s checkpoint with ``write_files(folder)``, make it the latest, drop older ones."""
    root = Path(model_dir) / CHECKPOINTS
    root.mkdir(exist_ok=True)
    final = root / f"epoch-{epoch:04d}"
    temporary = root / f".epoch-{epoch:04d}.part-{os.getpid()}"
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir()
    write_files(temporary)
    write_json(temporary / STATE, {"epoch": epoch, "framework": framework, "seconds": seconds, "history": history})
    if final.exists():  # left by a run that was killed after this rename but before it finished the epoch's work
        shutil.rmtree(final)
    os.replace(temporary, final)
    for older in root.iterdir():
        match = _EPOCH_FOLDER.match(older.name)
        if older != final and (not match or int(match.group(1)) < epoch):
            shutil.rmtree(older, ignore_errors=True)  # also half-written folders of killed runs
    return _read(final)


def latest(model_dir: Path) -> Checkpoint | None:
    """The newest complete checkpoint, or None when no epoch finished."""
    root = Path(model_dir) / CHECKPOINTS
    if not root.is_dir():
        return None
    found = sorted((int(match.group(1)), path) for path in root.iterdir()
                   if (match := _EPOCH_FOLDER.match(path.name)) and (path / STATE).is_file())
    return _read(found[-1][1]) if found else None


def _read(folder: Path) -> Checkpoint:
    state = json.loads((folder / STATE).read_text())
    return Checkpoint(folder, int(state["epoch"]), state["framework"], list(state["history"]),
                      float(state["seconds"]))


def publish(checkpoint: Checkpoint, model_dir: Path, names: tuple[str, ...]) -> None:
    """Put the checkpoint's ``names`` at the top of the run directory, where users and ``evaluate`` look for them:
    hard links (no copy of a large model), each swapped in atomically; a copy where links are not supported."""
    for name in names:
        target = Path(model_dir) / name
        temporary = target.with_name(f".part-{os.getpid()}-{name}")
        temporary.unlink(missing_ok=True)
        try:
            os.link(checkpoint.path(name), temporary)
        except OSError:  # e.g. a notebook's mounted drive
            shutil.copyfile(checkpoint.path(name), temporary)
        os.replace(temporary, target)
