"""Run directories: their file names, and the code that creates, writes and reads them.

A run directory is created once and never overwritten; every file in it is written atomically, so an interrupted
run keeps everything it finished. ``evaluate``, ``compare``, ``--resume`` and the tests read runs through here.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import shutil
import socket
import time
from pathlib import Path
from collections.abc import Iterator

from shared.formats import records
from shared.util.atomic import atomic_path
from shared.util.errors import RunDirError

# File names inside a run directory.
RUN = "run.json"  # what was asked for (experiment, settings, data): enough to continue the run
METRICS = "metrics.json"  # status, history and measurements of one model
SPLIT, WEIGHTS, OPTIMIZER, ONNX, CURVES = "split.json", "weights.npz", "optimizer.npz", "model.onnx", "curves.png"
SUMMARY, PREDICTIONS = "summary.txt", "predictions.png"
REPORT, REPORT_JSON = "classification_report.txt", "classification_report.json"  # per split: as printed, as data
# Each framework's own checkpoint of the model and of Adam's state, beside the neutral weights.npz and optimizer.npz
NATIVE_CHECKPOINTS = {"torch": "model.pt", "tf": "model.keras"}
NATIVE_OPTIMIZERS = {"torch": "optimizer.pt", "tf": "optimizer.keras.npz"}
STUDY_FIGURE, STUDY_REPORT = "study.png", "report.md"  # a study's curves of every arm, and its lab report
COMPARE = "compare"  # shared.compare's folder holds compare.md, compare.json and compare.png
COMPARISON, BEST = "comparison", "best"  # the pooling study's table (.md, .json) and its best variant's folder
LOCK = ".lock"  # held (flock) by the one process that trains the run, with its pid inside
CHECKPOINTS, STATE = "checkpoints", "state.json"  # shared.formats.checkpoints: the last finished epoch's training state
MANIFEST = "manifest.json"  # a checkpoint's file sizes and sha256, written last

# metrics.json "status"
RUNNING, COMPLETE, INTERRUPTED, DIVERGED, STOPPED = "running", "complete", "interrupted", "diverged", "stopped"


def default_run_dir(framework: str, arch: str) -> Path:
    return Path("runs") / f"{framework}-{arch}-{time.strftime('%Y%m%d-%H%M%S')}"


def check_new(path: Path) -> None:
    """Fail early, before any work, if the run directory cannot be created."""
    path = Path(path)
    if path.is_dir() and all(entry.name == LOCK for entry in path.iterdir()):
        return  # an empty folder (made by hand, or by a run killed as it started) holds nothing to overwrite
    if path.exists():
        raise RunDirError(f"run directory {path} already exists and is never overwritten; pass a new --out or move "
                          f"the old run away")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise RunDirError(f"cannot create run directory {path}: {parent} is a file, not a folder; pass an "
                                  f"--out inside a folder")
            if not os.access(parent, os.W_OK):
                raise RunDirError(f"cannot create run directory {path}: {parent} is not writable; pass a writable "
                                  f"--out")
            return


def create(path: Path) -> Path:
    """Create the run directory. A second run racing for the same name is refused by the lock the runner takes
    next (``locked``)."""
    check_new(path)
    try:
        Path(path).mkdir(parents=True, exist_ok=True)  # exists only when check_new found it empty
    except OSError as error:
        raise RunDirError(f"cannot create run directory {path}: {error.strerror}; pass a writable --out") from None
    return Path(path)


@contextlib.contextmanager
def locked(run_dir: Path) -> Iterator[None]:
    """Hold the run directory's lock for the block: a second process that would train the same run (two resumes
    started together) is refused with the holder's pid. The OS drops the lock with its process, however it ends,
    so a killed run never blocks its resume."""
    try:
        import fcntl
    except ImportError:  # Windows: no flock; the live-run check of metrics.json still applies
        yield
        return
    path = Path(run_dir) / LOCK
    try:
        handle = open(path, "a+")
    except OSError as error:
        raise RunDirError(f"cannot write to {run_dir} ({error.strerror}); a run directory must be writable to "
                          f"train into it") from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise RunDirError(f"{run_dir} is being trained by another process (pid {holder}); wait for it to "
                              f"finish or stop it, then --resume {run_dir}") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield  # closing the file releases the lock; the file stays, so no second process can lock a new one


@contextlib.contextmanager
def removed_unless_trained(run_dir: Path) -> Iterator[None]:
    """A new run directory that ends in an exception (a stop during start-up, a file that cannot be loaded) before
    any epoch finished is removed, so the same command works again. One with a finished epoch is kept."""
    try:
        yield
    except BaseException:
        if not has_finished_epoch(run_dir):
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def has_finished_epoch(run_dir: Path) -> bool:
    """Whether any model of the run (a study: any arm) has a checkpoint: something a stop must not throw away."""
    return any(Path(run_dir).glob(f"**/{CHECKPOINTS}/epoch-*"))


def _finite(value):
    """NaN and infinity as JSON null: standard JSON has no token for them, and strict parsers reject ``NaN``."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def write_json(path: Path, data: dict) -> None:
    """Replace ``path`` atomically with valid JSON, so a reader (or a crash) never sees half a file."""
    with atomic_path(path) as part:
        part.write_text(json.dumps(_finite(data), indent=2, allow_nan=False) + "\n")


def write_status(path: Path, metrics: dict) -> None:
    """metrics.json as a run ends. On a full disk the atomic write has no room for its second copy; the file is
    then rewritten in place, in the blocks it already has, so the status never stays "running". A crash in that
    moment could leave half a file, which readers report as damaged: still better than a status that lies."""
    try:
        write_json(path, metrics)
    except OSError as error:
        if error.errno not in (errno.ENOSPC, errno.EDQUOT) or not Path(path).is_file():
            raise
        with open(path, "r+") as handle:  # compact, so it fits in fewer blocks than the indented file had
            handle.truncate()
            handle.write(json.dumps(_finite(metrics), separators=(",", ":"), allow_nan=False) + "\n")


def write_split(folder: Path, record: dict) -> None:
    """A run's split.json, its only writer: which images trained and which validated. ``shared.run.experiments``
    makes the record: the seed and the train and val indices (``Split.to_json``), with ``val_files`` and
    ``fingerprint`` for an image folder; or, for an official split, its name and sizes."""
    write_json(Path(folder) / SPLIT, record)


def read_split(folder: Path) -> dict:
    """The record ``write_split`` wrote in ``folder``; ``Split.from_json`` turns one with indices into arrays."""
    return records.read_record(Path(folder) / SPLIT, records.SPLIT)


def read_json(path: Path, what: str = "file") -> dict:
    """A JSON file of a run; a missing or damaged one is a usage error that names it."""
    path = Path(path)
    if not path.is_file():
        raise RunDirError(f"{path} does not exist; expected a cnnlab run directory (the --out of a train run)")
    try:
        return json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        raise RunDirError(f"{path} is damaged ({error}); this {what} cannot be read. Restore the file from a copy; "
                          f"the trained epochs are in the run's checkpoints/ folder, which this does not touch") \
            from None


def running_marker() -> dict:
    """Written into metrics.json while a run trains, so a reader can tell a live run from a killed one."""
    return {"pid": os.getpid(), "host": socket.gethostname()}


def effective_status(metrics: dict) -> str | None:
    """The recorded status (None where none is recorded), except that a "running" run whose process is gone (killed,
    machine restarted) is "stopped": its last finished epoch can be resumed."""
    status = metrics.get("status")
    process = metrics.get("process") or {}
    if status != RUNNING or process.get("host") != socket.gethostname():
        return status
    try:
        os.kill(int(process["pid"]), 0)
    except ProcessLookupError:
        return STOPPED
    except (PermissionError, KeyError, ValueError, TypeError):
        pass
    return status


def read_finished_metrics(run_dir: Path, purpose: str) -> dict:
    """A completed run's metrics.json, validated (``shared.formats.records.FINISHED_METRICS``); an unfinished run is a
    usage error for ``purpose`` that says what to do."""
    path = Path(run_dir) / METRICS
    if not path.is_file() and not path.exists():
        raise RunDirError(f"{run_dir} is not a cnnlab run directory (no {METRICS}); pass the --out of a train run")
    metrics = records.read_record(path, records.Record(records.FINISHED_METRICS.what, (records.STATUS,),
                                                       records.FINISHED_METRICS.remedy))
    status = effective_status(metrics)
    assert status is not None  # read_record checked that "status" is a non-empty string
    if status != COMPLETE:
        hint = {STOPPED: "its process is gone (killed?); continue it with --resume",
                INTERRUPTED: "continue it with --resume", DIVERGED: "its loss diverged; start a new run with a "
                "lower --lr", RUNNING: "it is still training; wait for it to finish"}.get(status, "")
        raise RunDirError(f"{run_dir} is {status}, not complete: {hint}; {purpose} a finished run")
    return records.validate(metrics, records.FINISHED_METRICS, path)
