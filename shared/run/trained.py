"""A finished run's model, reloaded in a fresh process: what ``evaluate``, ``export`` and ``predict`` start from.

A run of the same framework is reloaded from its native checkpoint; a run of the other framework (or any run, with
``neutral``) from its neutral ``weights.npz``. A study directory stands for its best arm.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.formats import records, rundir, verified
from shared.formats.weights_io import load_weights
from shared.model.registry import build_spec
from shared.model.specs import ModelSpec
from shared.training.backend import Backend
from shared.training.precision import DEFAULT_PRECISION
from shared.util.errors import UsageError


def find_run(path: Path) -> Path:
    """The model folder of a run: the run itself, or a study's best arm (``best/``)."""
    path = Path(path)
    if (path / rundir.BEST / rundir.METRICS).is_file():
        return path / rundir.BEST
    table = path / f"{rundir.COMPARISON}.json"
    if not (path / rundir.METRICS).is_file() and table.is_file():
        return path / records.read_record(table, records.STUDY_TABLE)["best"]
    if not (path / rundir.METRICS).is_file():
        raise UsageError(f"{path} is not a finished cnnlab run directory (no {rundir.METRICS}); pass the --out of a "
                         f"train run")
    return path


@dataclass
class Trained:
    run_dir: Path
    metrics: dict
    spec: ModelSpec
    model: Any  # the backend's model, on the selected device
    native: bool  # loaded from this framework's own checkpoint (else from the neutral weights)
    source: str  # which file, in words

    @property
    def classes(self) -> list[str]:
        return list(self.metrics["classes"])


def load_trained(prog: str, framework: str, backend: Backend, run_dir: Path, metrics: dict,
                 neutral: bool = False, select_device: bool = True) -> Trained:
    """The run's trained model in ``backend``, on the device the run trained on where there is one (a CPU run's
    logits are reproduced exactly on the CPU); ``select_device=False`` keeps the device already selected. The file it
    loads is first verified against the run's record of it (``shared.formats.verified``): a mismatch is a
    ``WeightsError``."""
    spec = build_spec(metrics["arch"], len(metrics["classes"]), metrics["image_size"])
    if select_device:
        backend.select_device("auto" if str(metrics.get("device", "cpu")).startswith("cuda") else "cpu")
    model = backend.build_model(spec, metrics["config"].get("precision", DEFAULT_PRECISION))
    native = metrics["framework"] == framework and not neutral
    if native and not (run_dir / backend.checkpoint_name).is_file():
        print(f"{prog}: note: {run_dir / backend.checkpoint_name} is missing; loading the neutral "
              f"{rundir.WEIGHTS} instead", file=sys.stderr)
        native = False
    # Verified before any loader sees it: a damaged file would otherwise load as NaN weights, or crash the unpickler
    remedy = "restore it from a copy, or train the run again"
    if native:
        verified.verify_run_file(run_dir, metrics, backend.checkpoint_name, remedy)
        backend.load_checkpoint(model, run_dir / backend.checkpoint_name)
        source = backend.checkpoint_name
    else:
        verified.verify_run_file(run_dir, metrics, rundir.WEIGHTS, remedy)
        backend.set_weights(model, spec, load_weights(run_dir / rundir.WEIGHTS, spec))
        source = f"{rundir.WEIGHTS} (trained in {metrics['framework']})"
    return Trained(run_dir, metrics, spec, model, native, source)
