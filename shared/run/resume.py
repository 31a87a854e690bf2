"""``--resume RUN_DIR``: continue a run from its last finished epoch, with the run's own settings.

- In place (no ``--out``): the run's framework continues its own directory. A study continues at the
  arm and epoch where it stopped; finished variants are kept.
- Into a new directory (``--out NEW_DIR``), in either framework: from the neutral weights and Adam state when the
  other framework wrote them. The history carries over and metrics.json records where the run came from.
- ``--epochs N`` sets the total: a finished run is extended to N epochs, unless its learning-rate schedule depends
  on the total (cosine): that is refused, with the reason.
- ``--device``, ``--replicas`` and ``--no-feature-cache`` change only where and how fast the run trains, so they may
  be given.

Every other training flag is refused: a resumed run that silently changed its learning rate or data would no
longer be the run it claims to continue.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from shared.formats import checkpoints, rundir
from shared.util.errors import RunDirError, UsageError
from shared.run.options import RunOptions
from shared.run.plan import Job, Plan, unit_dir
from shared.training.config import TrainConfig
from shared.util import flags
from shared.training.schedule import extendable

# The flags that may accompany --resume (declared ``resumable``); everything else is the run's own.
RESUME_FLAGS = flags.resumable(RunOptions, TrainConfig)


def given_flags(argv: list[str]) -> list[str]:
    return [token.split("=", 1)[0] for token in argv if token.startswith("--")]


def plan_resume(args, argv: list[str], framework: str) -> Job:
    others = [flag for flag in given_flags(argv) if flag not in RESUME_FLAGS]
    if others:
        allowed = [flag for flag in RESUME_FLAGS if flag != "--resume"]
        raise UsageError(f"{others[0]}: a resumed run keeps its own settings; with --resume give only "
                         f"{', '.join(allowed[:-1])} or {allowed[-1]} (--epochs N: the new total; --out NEW_DIR: "
                         f"continue into a new directory)")
    source = Path(args.resume)
    if not source.is_dir():
        raise RunDirError(f"--resume {source}: no such run directory; pass the --out of an earlier train run")
    if not (source / rundir.RUN).is_file():
        raise RunDirError(f"--resume {source}: not a cnnlab run directory (it has no {rundir.RUN}); pass the folder "
                          f"a train run created, not one of its variants or files")
    recorded = rundir.read_json(source / rundir.RUN, "run's settings")
    try:
        plan, started_in = Plan.from_json(recorded), recorded["framework"]
    except (KeyError, TypeError, ValueError) as error:
        raise RunDirError(f"--resume {source}: {rundir.RUN} is not a cnnlab run's settings ({type(error).__name__}: "
                          f"{error}); pass the folder a train run created") from None
    if args.epochs is not None and args.epochs != plan.config.epochs:
        for unit in plan.units():
            if not extendable(unit.config.lr_schedule):
                raise UsageError(f"--epochs {args.epochs}: {unit.arm.name} follows a {unit.config.lr_schedule} "
                                 f"learning-rate schedule over its {plan.config.epochs} epochs; over "
                                 f"{args.epochs} epochs every step's rate would differ, so the extended run would "
                                 f"not be the run it continues. Start a new run with --epochs {args.epochs}")
        plan = plan.with_epochs(args.epochs)
    if not args.feature_cache:  # it changes only the speed, like --device
        plan = replace(plan, config=replace(plan.config, feature_cache=False))
    in_place = args.out is None
    if in_place and started_in != framework:
        raise UsageError(f"--resume {source}: this run was trained with {started_in}; continue it in {framework} "
                         f"into a new directory with --out NEW_DIR, or in place with cnnlab_{started_in}.train")
    starts, done = {}, set()
    for unit in plan.units():
        folder = unit_dir(source, unit)
        status = _status(folder)
        if status == rundir.RUNNING:
            raise UsageError(f"--resume {source}: {folder} is still training in another process; stop it first")
        if status == rundir.DIVERGED:
            raise UsageError(f"--resume {source}: {folder} diverged, and would diverge again at the same batch; "
                             f"start a new run with a lower --lr")
        start = _resumable_checkpoint(source, folder)
        if start is not None and start.epoch > plan.config.epochs:
            raise UsageError(f"--epochs {plan.config.epochs}: {folder} has already trained {start.epoch} epochs; "
                             f"pass a larger total to extend it")
        if in_place and status == rundir.COMPLETE and start is not None and start.epoch == plan.config.epochs:
            done.add(unit.folder)
        starts[unit.folder] = start
    table_missing = plan.is_study and not (source / f"{rundir.COMPARISON}.json").is_file()  # e.g. a full disk
    if in_place and len(done) == len(starts) and not table_missing:
        raise UsageError(f"--resume {source}: the run is complete at {plan.config.epochs} epochs; pass --epochs N "
                         f"with N above {plan.config.epochs} to extend it")
    if in_place:
        first = unit_dir(source, plan.units()[0])
        recorded_split = rundir.read_split(first) if (first / rundir.SPLIT).is_file() else None
        return Job(plan, source, started_in, in_place=True, starts=starts, done=done, recorded_split=recorded_split)
    return Job(plan, Path(args.out), framework, starts=starts,
               resumed_from={"run": str(source.absolute()), "framework": started_in})


def _resumable_checkpoint(source: Path, folder: Path) -> checkpoints.Checkpoint | None:
    """The newest intact checkpoint of a unit. A damaged newest one falls back to the one before it, with a
    warning; when none is intact, or the checkpoints are gone although epochs finished, the resume is refused
    before anything is written: restarting at epoch 1 would silently throw away the finished epochs."""
    start, damaged = checkpoints.intact(folder)
    if damaged:
        if start is None:
            raise RunDirError(f"--resume {source}: the checkpoint {damaged[0]}, and no earlier intact checkpoint is "
                              f"left; restore the file from a copy, or start a new run (nothing was changed)")
        print(f"warning: checkpoint {damaged[0]}; resuming from epoch {start.epoch}, the last intact checkpoint",
              file=sys.stderr)
    finished = _finished_epochs(folder)
    if start is None and finished:
        raise RunDirError(f"--resume {source}: {folder / rundir.METRICS} records {finished} finished epoch(s), but "
                          f"{folder / rundir.CHECKPOINTS} holds no checkpoint (deleted?); restore the folder from "
                          f"a copy, or start a new run (nothing was changed)")
    return start


def _finished_epochs(folder: Path) -> int:
    try:
        return len(rundir.read_json(folder / rundir.METRICS).get("history") or [])
    except UsageError:  # missing or damaged: nothing to compare with
        return 0


def _status(folder: Path) -> str | None:
    metrics_file = folder / rundir.METRICS
    if not metrics_file.is_file():
        return None
    try:
        return rundir.effective_status(rundir.read_json(metrics_file))
    except UsageError:
        return None  # a damaged metrics.json: the checkpoints decide
