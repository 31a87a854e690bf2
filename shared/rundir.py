"""Run directories: created once, never overwritten, and written file by file atomically so that an interrupted run
keeps everything it finished."""

from __future__ import annotations

import json
import time
from pathlib import Path

from shared.atomic import atomic_path
from shared.cli import UsageError


def default_run_dir(framework: str, arch: str) -> Path:
    return Path("runs") / f"{framework}-{arch}-{time.strftime('%Y%m%d-%H%M%S')}"


def check_new(path: Path) -> None:
    """Fail early, before any work, if the run directory is already there."""
    if path.exists():
        raise UsageError(f"run directory {path} already exists and is never overwritten; "
                         f"pass a new --out or move the old run away")


def create(path: Path) -> Path:
    """Create the run directory; ``exist_ok=False`` also guards against a second run racing for the same name."""
    check_new(path)
    try:
        path.mkdir(parents=True, exist_ok=False)
    except FileExistsError:
        check_new(path)
    except OSError as error:
        raise UsageError(f"cannot create run directory {path}: {error.strerror}; pass a writable --out") from None
    return path


def write_json(path: Path, data: dict) -> None:
    """Replace ``path`` atomically, so a reader (or a crash) never sees half a file."""
    with atomic_path(path) as part:
        part.write_text(json.dumps(data, indent=2) + "\n")


def read_finished_metrics(run_dir: Path, purpose: str) -> dict:
    """A completed run's metrics.json; an unfinished or interrupted run is a usage error for ``purpose``."""
    metrics = json.loads((Path(run_dir) / "metrics.json").read_text())
    if metrics.get("status") != "complete":
        raise UsageError(f"{run_dir} is {metrics.get('status')}, not complete; {purpose} a finished run")
    return metrics
