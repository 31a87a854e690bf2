"""How a unit's training ends: a finished one's reports (classification reports, prediction grid), and a stopped or
diverged one marked in its metrics.json, its curves drawn, with one message that says what was kept."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import numpy as np

from shared.data.dataset import Dataset
from shared.formats import checkpoints, rundir
from shared.report import reports
from shared.report.plots import Curves, plot_predictions
from shared.training.backend import Backend
from shared.util.errors import Diverged, UsageError
from shared.util.timings import Timings


def stopped(metrics: dict, folder: Path, status: str, message: str, exit_status: int, curves: Curves,
            history: list[dict], timings: Timings) -> int:
    """A run that ends early: marked, its finished epochs kept, its curves drawn, no export, one message."""
    metrics["status"] = status
    metrics.pop("process", None)
    try:
        with timings.phase("reports"):
            curves.draw(history)
    except (KeyboardInterrupt, Exception):  # noqa: BLE001 - the curves are a courtesy, the status is not: a second
        # stop, a full disk, or matplotlib left half-imported by the stop that ended the run; it is marked all the same
        pass
    metrics["timings"] = timings.take()
    try:
        rundir.write_status(folder / rundir.METRICS, metrics)
    except OSError:  # not even in place: readers see the dead process and report "stopped"
        pass
    print(f"\n{message}", file=sys.stderr)
    return exit_status


def not_written_message(error: OSError, folder: Path, run_dir: Path, needed: int | None) -> str:
    """One line for a file the run could not write (a full disk, a read-only one, a quota): what, why, how much
    room the next checkpoint needs, and what the run keeps."""
    target = error.filename or folder
    try:
        free = f"{_megabytes(shutil.disk_usage(folder).free)} free"
    except OSError:
        free = "free space unknown"
    room = f"; a checkpoint needs about {_megabytes(needed)}, the disk has {free}" if needed else f" ({free})"
    latest = checkpoints.latest(folder)
    kept = (f"the run keeps epoch {latest.epoch}, its last checkpoint; free some space (or make {run_dir} "
            f"writable) and continue with --resume {run_dir}" if latest is not None else
            f"no epoch had finished; free some space, and --resume {run_dir} starts it from the beginning")
    return f"could not write {target}: {error.strerror or error}{room}; {kept}"


def _megabytes(count: int) -> str:
    return f"{count / 2**20:,.1f} MB"


def mark_abandoned(folders: list[Path], error: BaseException) -> None:
    """metrics.json of every unit this process left "running" when an exception ends it, marked with how it
    ended, so no status says "running" once the process is gone."""
    status = rundir.INTERRUPTED if isinstance(error, KeyboardInterrupt) else rundir.STOPPED
    for folder in folders:
        path = folder / rundir.METRICS
        try:
            metrics = rundir.read_json(path) if path.is_file() else None
            if metrics and metrics.get("status") == rundir.RUNNING and \
                    (metrics.get("process") or {}).get("pid") == os.getpid():
                metrics.pop("process")
                rundir.write_status(path, {**metrics, "status": status,
                                           "stop_reason": f"{type(error).__name__}: {error}"})
        except (UsageError, OSError):  # damaged or unwritable: readers see the dead process
            pass


def interrupted_message(folder: Path, run_dir: Path, history: list[dict]) -> str:
    latest = checkpoints.latest(folder)
    if latest is None:
        return (f"interrupted during epoch {len(history) + 1}, before any epoch finished: {folder} holds no trained "
                f"weights yet; --resume {run_dir} starts it from the beginning")
    return f"interrupted: {folder} keeps the {latest.epoch} finished epoch(s); continue with --resume {run_dir}"


def diverged_message(diverged: Diverged, history: list[dict], lr: float) -> str:
    kept = f"the run keeps epoch {len(history)}, the last finished one" if history else "no epoch had finished"
    return (f"diverged: {diverged}; {kept}; nothing was exported. Start a new run with a lower --lr "
            f"(this one used {lr:g})")


def write_reports(backend: Backend, model, train_set: Dataset, val_set: Dataset, batch_size: int, run_dir: Path,
                  title: str) -> None:
    """Per-class report for train and validation into the files, and a grid of validation predictions. The terminal
    gets the validation report and one line for train: the full train report is long and is in the file."""
    logits = {part: backend.predict_logits(model, dataset.images, batch_size)
              for part, dataset in (("train", train_set), ("validation", val_set))}
    parts = {"train": (train_set.labels, logits["train"]), "validation": (val_set.labels, logits["validation"])}
    text, data = reports.classification_reports(parts, train_set.class_names, train_set.skipped)
    reports.write_text(run_dir / rundir.REPORT, text)
    rundir.write_json(run_dir / rundir.REPORT_JSON, data)
    print(reports.classification_reports({"validation": parts["validation"]}, train_set.class_names)[0])
    print(reports.one_line_summary("train", data["train"], len(train_set.labels), run_dir / rundir.REPORT))
    grid = np.random.default_rng(0).permutation(len(val_set.labels))[:9]
    plot_predictions(val_set.images[grid], val_set.labels[grid], logits["validation"][grid].argmax(axis=1),
                     val_set.class_names, run_dir / rundir.PREDICTIONS, title)
