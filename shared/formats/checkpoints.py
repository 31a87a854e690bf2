"""The training state of a finished epoch, kept so that a kill at any moment loses at most the epoch in progress.

After epoch k, everything needed to continue goes into ``checkpoints/epoch-000k/`` of the model's run directory:
- the native model checkpoint (weights and BatchNorm statistics) and the native optimizer state;
- the same in the neutral format: ``weights.npz`` and ``optimizer.npz`` (Adam's step and both moments), which the
  other framework can continue from;
- ``state.json``: the epoch, the history so far and the seconds spent;
- ``manifest.json``, written last: the size and sha256 of every other file, so a resume can tell an intact
  checkpoint from one damaged afterwards (a truncated copy, a disk error, a file deleted by hand).

The folder is written under a temporary name and renamed into place in one step, so it exists complete or not at
all. It is then read back and verified against its manifest, and only then are older epochs removed, all but the
one before it: that one is the fallback when the newest is found damaged later. The batch order needs no saved
state: it is drawn from (seed, epoch).
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable

from shared.formats.rundir import CHECKPOINTS, MANIFEST, STATE, write_json
from shared.model.shapes import parameters
from shared.model.specs import ModelSpec
from shared.util.download import file_digest

_EPOCH_FOLDER = re.compile(r"^epoch-(\d{4,})$")
KEPT = 2  # the newest checkpoint and the one before it, its fallback


@dataclass(frozen=True)
class Checkpoint:
    folder: Path
    epoch: int
    framework: str  # which framework wrote the native files
    history: list[dict]
    seconds: float  # training seconds up to this epoch

    def path(self, name: str) -> Path:
        return self.folder / name


@dataclass(frozen=True)
class Damaged:
    """A checkpoint folder that does not match its manifest: ``problem`` names the file and what is wrong."""

    folder: Path
    problem: str

    def __str__(self) -> str:
        return f"{self.folder}: {self.problem}"


def commit(model_dir: Path, epoch: int, framework: str, history: list[dict], seconds: float,
           write_files: Callable[[Path], None]) -> Checkpoint:
    """Write epoch ``epoch``'s checkpoint with ``write_files(folder)``, make it the latest, drop older ones but its
    fallback. Any failure (a full disk, a stop) removes the temporary folder and leaves the earlier epochs as they
    were."""
    root = Path(model_dir) / CHECKPOINTS
    root.mkdir(exist_ok=True)
    final = root / f"epoch-{epoch:04d}"
    temporary = root / f".epoch-{epoch:04d}.part-{os.getpid()}"
    shutil.rmtree(temporary, ignore_errors=True)
    try:
        temporary.mkdir()
        write_files(temporary)
        write_json(temporary / STATE, {"epoch": epoch, "framework": framework, "seconds": seconds,
                                       "history": history})
        write_manifest(temporary)
        if final.exists():  # left by a run killed after this rename but before it finished the epoch's work
            shutil.rmtree(final)
        os.replace(temporary, final)
    except OSError as error:
        if error.filename is not None:
            raise
        raise OSError(error.errno, error.strerror, str(final)) from error  # a failed write() names no file
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    problem = verify(final)
    if problem is not None:  # the disk did not keep what was written: keep the earlier epochs, stop the run
        raise OSError(f"{final} did not read back as written ({problem})")
    _prune(root, epoch)
    return _read(final)


def _prune(root: Path, epoch: int) -> None:
    """Keep ``epoch`` and the ``KEPT - 1`` epochs before it. Newer folders go too: they can only be damaged ones
    that a resume fell back from, and this run has now written its own epochs after the fallback. Half-written
    folders of killed runs go as well."""
    numbered = {int(match.group(1)): path for path in root.iterdir() if (match := _EPOCH_FOLDER.match(path.name))}
    older = sorted(number for number in numbered if number < epoch)
    kept = {epoch, *older[max(0, len(older) - (KEPT - 1)):]}  # not [-(KEPT - 1):], which keeps all when KEPT is 1
    for number, path in numbered.items():
        if number not in kept:
            shutil.rmtree(path, ignore_errors=True)
    for path in root.glob(".epoch-*.part-*"):
        shutil.rmtree(path, ignore_errors=True)


def write_manifest(folder: Path) -> None:
    """``manifest.json``: every other file's size and sha256. Written last: a folder with one is complete."""
    files = sorted(path for path in Path(folder).iterdir() if path.is_file() and path.name != MANIFEST)
    write_json(Path(folder) / MANIFEST, {
        "files": {path.name: {"bytes": path.stat().st_size, "sha256": file_digest(path, "sha256")} for path in files}})


def verify(folder: Path) -> str | None:
    """What is wrong with a checkpoint folder (the first damaged or missing file), or None when it matches its
    manifest. Sizes are compared first: a truncated file is found without hashing it."""
    folder = Path(folder)
    try:
        listed = json.loads((folder / MANIFEST).read_text())["files"]
    except FileNotFoundError:
        return f"{MANIFEST} is missing, so the checkpoint cannot be verified"
    except (OSError, ValueError, KeyError, TypeError) as error:
        return f"{MANIFEST} is damaged ({type(error).__name__})"
    for name, expected in listed.items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        size = path.stat().st_size
        if size != expected["bytes"]:
            return f"{name} has {size:,} bytes, the manifest says {expected['bytes']:,}"
    for name, expected in listed.items():
        if file_digest(folder / name, "sha256") != expected["sha256"]:
            return f"{name} does not match its sha256 in the manifest (its contents changed)"
    return None


def intact(model_dir: Path) -> tuple[Checkpoint | None, list[Damaged]]:
    """The newest checkpoint that matches its manifest, and the newer ones that do not (newest first)."""
    root = Path(model_dir) / CHECKPOINTS
    if not root.is_dir():
        return None, []
    damaged: list[Damaged] = []
    for _, folder in sorted(((int(match.group(1)), path) for path in root.iterdir()
                             if (match := _EPOCH_FOLDER.match(path.name))), reverse=True):
        problem = verify(folder)
        if problem is None:
            try:
                return _read(folder), damaged
            except (ValueError, KeyError, TypeError) as error:  # a state.json that verifies but is not ours
                problem = f"{STATE} is not a checkpoint's state ({type(error).__name__}: {error})"
        damaged.append(Damaged(folder, problem))
    return None, damaged


def latest(model_dir: Path) -> Checkpoint | None:
    """The newest intact checkpoint, or None when no epoch finished (or none is intact)."""
    return intact(model_dir)[0]


def _read(folder: Path) -> Checkpoint:
    state = json.loads((folder / STATE).read_text())
    return Checkpoint(folder, int(state["epoch"]), state["framework"], list(state["history"]),
                      float(state["seconds"]))


def room_needed(model_dir: Path, spec: ModelSpec, trainable: list[str]) -> int:
    """About the bytes the next checkpoint takes, for a message on a full disk: the last one's size; before the
    first, four bytes per number in the native and the neutral copy of the weights and of Adam's two moments."""
    last = latest(model_dir)
    if last is not None:
        return sum(path.stat().st_size for path in last.folder.iterdir() if path.is_file())
    numbers = {param.name: math.prod(param.shape) for param in parameters(spec)}
    return 2 * 4 * (sum(numbers.values()) + 2 * sum(numbers[name] for name in trainable))


def publish(checkpoint: Checkpoint, model_dir: Path, names: tuple[str, ...]) -> None:
    """Put the checkpoint's ``names`` at the top of the run directory, where users and ``evaluate`` look for them:
    hard links (no copy of a large model), each swapped in atomically; a copy where links are not supported."""
    for name in names:
        target = Path(model_dir) / name
        temporary = target.with_name(f".part-{os.getpid()}-{name}")
        temporary.unlink(missing_ok=True)
        try:
            try:
                os.link(checkpoint.path(name), temporary)
            except OSError:  # e.g. a notebook's mounted drive
                shutil.copyfile(checkpoint.path(name), temporary)
            os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)
