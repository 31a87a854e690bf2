"""What ``python -m cnnlab_<backend>.train`` does, written once for both backends.

Start-up checks everything a user can get wrong, cheapest first, before the run directory exists and before the
framework is imported; a refused run leaves nothing behind. Training then writes the run directory as it goes
(``shared.run.unit``): after every epoch a complete checkpoint (``shared.formats.checkpoints``), so a run stopped in
any way keeps its last finished epoch and ``--resume`` continues it (``shared.run.resume``). A study trains one
unit per arm and seed (``shared.run.study``).
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from collections.abc import Callable

from shared.formats import pretrained, rundir
from shared.model.registry import build_spec
from shared.model.specs import ModelSpec
from shared.run.experiments import PreparedData, prepare_data
from shared.run.plan import Job, new_job, unit_dir
from shared.run.outcome import mark_abandoned
from shared.run.resume import plan_resume
from shared.run.study import train_study
from shared.run.unit import train_unit
from shared.training.distributed import check_batches_fill_replicas
from shared.training import distributed
from shared.training.backend import Backend
from shared.training.distributed import World
from shared.util import progress, signals
from shared.util.errors import EXIT_DIVERGED, EXIT_OK, RunDirError, UsageError
from shared.util.home import cnnlab_home
from shared.util.timings import Timings


@dataclass
class Run:
    """What a training run left: its directory, its metrics, and the trained model in the framework's own type.

    A study (several arms or seeds) gives its comparison table as ``metrics`` and the best arm's model (its first
    seed); each arm's and seed's own metrics are in their folders. ``status`` is ``complete``, ``interrupted``
    (every finished epoch is kept; ``--resume`` or ``resume=`` continues) or ``diverged``."""

    path: Path
    status: str
    metrics: dict
    model: Any
    exit_status: int

    def __repr__(self) -> str:
        return f"Run(path={str(self.path)!r}, status={self.status!r})"


@dataclass
class StartUp:
    """What the checks of ``start_up`` leave for training: the job, the loaded backend on its device, the data,
    a spec per architecture and, for a pretrained experiment, the ImageNet backbone's weights."""

    job: Job
    backend: Backend
    device: str
    data: PreparedData
    specs: dict[str, ModelSpec]
    backbone: dict | None


def execute(framework: str, load_backend: Callable[[], Backend], args, argv: list[str],
            started: float | None = None) -> Run:
    """Train what the parsed flags ask for. Raises ``UsageError`` (nothing written) for a mistake the user can fix,
    and ``KeyboardInterrupt`` for a stop before training began; a stop during training ends the run cleanly.
    ``started``: the clock reading the run's ``timings`` count from (the command line's process start); now when
    not given."""
    timings = Timings(started)
    with signals.stop_requests(), contextlib.ExitStack() as held:  # the run directory's lock and clean-up
        ready = start_up(framework, load_backend, args, argv, timings, held)
        try:
            exit_status, models = train(ready, timings)
        except OSError as error:  # outside a unit's epochs: its first files, or a study's table
            raise RunDirError(_not_written(error, ready.job.run_dir)) from None
        # A process that stopped early leaves at once: its peers may wait in a collective it will never join.
        ready.backend.finish(stopped=exit_status not in (EXIT_OK, EXIT_DIVERGED))
        return result(ready, exit_status, models)


def train(ready: StartUp, timings: Timings) -> tuple[int, dict[str, Any]]:
    """The exit status, and the models trained in this process by their unit's folder."""
    if ready.job.plan.is_study:
        return train_study(ready.backend, ready.specs, ready.data, ready.job, ready.device, timings, ready.backbone)
    unit = ready.job.plan.units()[0]
    trained = train_unit(ready.backend, ready.specs[unit.arm.arch], ready.data, ready.job, ready.device, unit,
                         timings, ready.backbone)
    return trained.exit_status, {unit.folder: trained.model}


def _not_written(error: OSError, run_dir: Path) -> str:
    verb = "write" if error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS) else "use"
    if rundir.has_finished_epoch(run_dir):
        kept = f"the finished epochs are kept; once it can be written, continue with --resume {run_dir}"
    else:
        kept = "nothing was kept; free some space (or pass a writable --out) and start the run again"
    return f"could not {verb} {error.filename or run_dir}: {error.strerror or error}; {kept}"


def result(ready: StartUp, exit_status: int, models: dict[str, Any]) -> Run:
    """The ``Run`` of a single model or a study, from its exit status and the models this process trained by
    folder: a study that finished gives its table and its best arm's model, anything else its last unit's."""
    job, last = ready.job, next(reversed(models), None)
    last_model = None if last is None else models[last]
    if not ready.backend.current_world().is_main:  # the run directory is rank 0's
        status = {EXIT_OK: rundir.COMPLETE, EXIT_DIVERGED: rundir.DIVERGED}.get(exit_status, rundir.INTERRUPTED)
        return Run(job.run_dir, status, {}, last_model, exit_status)
    if job.plan.is_study and exit_status == EXIT_OK:
        table = rundir.read_json(job.run_dir / f"{rundir.COMPARISON}.json")
        best = models.get(table["best"]) or trained_model(ready.backend, ready.specs, job.run_dir / table["best"])
        return Run(job.run_dir, rundir.COMPLETE, table, best, exit_status)
    folder = job.run_dir
    if job.plan.is_study:
        folder = unit_dir(job.run_dir, job.plan.units()[0]) if last is None else job.run_dir / last
    metrics = rundir.read_json(folder / rundir.METRICS)
    return Run(job.run_dir, metrics["status"], metrics, last_model, exit_status)


def trained_model(backend: Backend, specs: dict[str, ModelSpec], folder: Path):
    """The finished model in ``folder``, from its native checkpoint: for a resumed study whose best arm finished
    before this process started."""
    metrics = rundir.read_json(folder / rundir.METRICS)
    model = backend.build_model(specs[metrics["arch"]], metrics["precision"])
    backend.load_checkpoint(model, folder / backend.checkpoint_name)
    return model


def start_up(framework: str, load_backend: Callable[[], Backend], args, argv: list[str], timings: Timings,
             held: contextlib.ExitStack) -> StartUp:
    """Every check a user can fail, cheapest first; the framework is imported after them, the run directory
    created last. ``held`` keeps the run directory's lock until training ends, and on a failure removes a new run
    directory that trained nothing and marks the units this process left running."""
    launched = distributed.launched_world(framework)
    _one_process_speaks(launched)
    job = plan_resume(args, argv, framework) if args.resume is not None else new_job(args, framework)
    if job.in_place and launched.is_main:  # before anything is read for training: a second resume stops here
        held.enter_context(rundir.locked(job.run_dir))
    _check_download_once(job, launched)
    _check_image_sizes(job)
    if not job.in_place:
        rundir.check_new(job.run_dir)
    data = prepare_data(job.plan.data, job.plan.download)
    if job.in_place:
        job.check_same_data(data.split)
    specs = _model_specs(job, data)
    checkpoint = _pretrained_checkpoint(job)
    with timings.phase("import"):
        backend = load_backend()
    device = backend.select_device(args.device, args.replicas, args.peer_timeout)
    check_batches_fill_replicas(len(data.train.labels), job.plan.config.batch_size, backend.current_world().replicas)
    job.run_dir = Path(backend.broadcast(str(job.run_dir)))  # its default name has rank 0's start time
    backbone = None
    if checkpoint is not None:
        backbone = pretrained.backbone_weights(checkpoint, specs[job.plan.archs[0]], backend.port_checkpoint,
                                               cnnlab_home())
    if backend.current_world().is_main:
        _claim_run_dir(job, held)
    return StartUp(job, backend, device, data, specs, backbone)


def _claim_run_dir(job: Job, held: contextlib.ExitStack) -> None:
    """Rank 0's hold on the run directory until training ends: created (a new run) and locked; on a failure, the
    units it leaves running marked and a new directory that trained nothing removed. Then run.json."""
    if not job.in_place:
        rundir.create(job.run_dir)
        held.enter_context(rundir.locked(job.run_dir))  # first: a process refused the lock removes nothing
        held.enter_context(rundir.removed_unless_trained(job.run_dir))
    folders = [unit_dir(job.run_dir, unit) for unit in job.plan.units()]
    held.push(lambda kind, error, trace: mark_abandoned(folders, error) if error is not None else None)
    try:
        rundir.write_json(job.run_dir / rundir.RUN, job.plan.to_json(job.framework_started))
    except OSError as error:
        raise RunDirError(_not_written(error, job.run_dir)) from None


def _one_process_speaks(world: World) -> None:
    """Of several processes, rank 0 alone prints, draws the progress bars and writes."""
    if not world.is_main:
        progress.quiet()
        sys.stdout = open(os.devnull, "w")


def _check_download_once(job: Job, world: World) -> None:
    if world.distributed and job.plan.download:
        raise UsageError("--download with several processes would fetch the data once per process; download it "
                         "first with one process (the same command without torchrun or TF_CONFIG), then start "
                         "them")


def _check_image_sizes(job: Job) -> None:
    """An image size an architecture cannot take is refused before any image is decoded."""
    for arch in job.plan.archs:
        try:
            build_spec(arch, 2, job.plan.data.image_size or 32)
        except ValueError as error:
            raise UsageError(f"--image-size: {error}") from None


def _model_specs(job: Job, data: PreparedData) -> dict[str, ModelSpec]:
    """A spec per architecture of the plan, for the data's classes and image size."""
    try:
        return {arch: build_spec(arch, len(data.train.class_names), data.train.image_size)
                for arch in job.plan.archs}
    except ValueError as error:
        raise UsageError(str(error)) from None


def _pretrained_checkpoint(job: Job) -> Path | None:
    """The ImageNet checkpoint a pretrained experiment starts from, found or downloaded; None when every unit
    resumes from its own epoch."""
    plan = job.plan
    if not plan.experiment.pretrained or all(job.starts.get(unit.folder) is not None for unit in plan.units()):
        return None
    return pretrained.locate(cnnlab_home(), plan.weights, plan.download)
