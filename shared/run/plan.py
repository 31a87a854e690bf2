"""What a train command is asked to do, checked: the plan (experiment, architectures, settings, data), and the job
that carries it out (where, and from which finished epochs). A plan is stored as ``run.json`` in the run directory,
so ``--resume`` can continue the run with its own settings."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from shared.formats import rundir
from shared.formats.checkpoints import Checkpoint
from shared.training.config import TrainConfig
from shared.util import flags
from shared.util.errors import UsageError
from shared.model.specs import ModelSpec
from shared.run.experiments import EXPERIMENTS, Arm, DataOptions, Experiment, PreparedData
from shared.training.backend import Backend
from shared.util.timings import Timings


@dataclass(frozen=True)
class Unit:
    """One model to train: an arm of the plan from one seed, in its own folder."""

    arm: Arm
    seed: int
    folder: str  # relative to the run directory: "" (a single model), "<arm>", or "<arm>/seed-<seed>" (repeats)
    config: TrainConfig  # the run's settings with the arm's architecture, recipe and this seed


@dataclass(frozen=True)
class Plan:
    experiment: Experiment
    archs: tuple[str, ...]
    config: TrainConfig
    data: DataOptions
    weights: Path | None
    download: bool
    repeats: int = 1  # seeds per arm: config.seed, config.seed + 1, ...

    @property
    def arms(self) -> tuple[Arm, ...]:
        return self.experiment.study_arms(self.archs)

    @property
    def is_study(self) -> bool:
        return len(self.arms) > 1

    @property
    def seeds(self) -> list[int]:
        return [self.config.seed + offset for offset in range(self.repeats)]

    def units(self, arm: Arm | None = None) -> list[Unit]:
        """Every model the plan trains (of ``arm`` only, if given), arm by arm, seed by seed."""
        units = []
        for each in self.arms if arm is None else (arm,):
            for seed in self.seeds:
                folder = each.name if self.is_study else ""
                if self.repeats > 1:
                    folder = f"{folder}/seed-{seed}"
                config = replace(self.config, arch=each.arch, seed=seed, **each.recipe.settings())
                units.append(Unit(each, seed, folder, config))
        return units

    def with_epochs(self, epochs: int) -> Plan:
        return replace(self, config=replace(self.config, epochs=epochs))

    def to_json(self, framework: str) -> dict:
        return {"framework": framework, "experiment": self.experiment.name, "archs": list(self.archs),
                "config": self.config.to_json(), "data": self.data.to_json(),
                "weights": str(self.weights) if self.weights else None, "repeats": self.repeats,
                "arms": {arm.name: {"arch": arm.arch, **arm.recipe.settings()} for arm in self.arms}}

    @classmethod
    def from_json(cls, data: dict) -> Plan:
        weights = Path(data["weights"]) if data.get("weights") else None
        return cls(EXPERIMENTS[data["experiment"]], tuple(data["archs"]), TrainConfig(**data["config"]),
                   DataOptions.from_json(data["data"]), weights, download=False, repeats=data.get("repeats", 1))


def unit_dir(run_dir: Path, unit: Unit) -> Path:
    """A single model trains in the run directory itself; each arm of a study, and each repeat, in its own folder."""
    return Path(run_dir) / unit.folder if unit.folder else Path(run_dir)


@dataclass
class Job:
    plan: Plan
    run_dir: Path
    framework_started: str  # the framework that created the run directory
    in_place: bool = False  # continuing an existing run directory
    starts: dict[str, Checkpoint | None] = field(default_factory=dict)  # unit folder -> the finished epoch to continue
    done: set[str] = field(default_factory=set)  # unit folders already complete at the planned epochs (kept)
    resumed_from: dict | None = None  # {"run", "framework"}: the run this one continues in a new directory
    recorded_split: dict | None = None  # split.json of the run being continued in place

    def check_same_data(self, split: dict) -> None:
        """Continuing in place on other data would mix two datasets in one run."""
        if self.recorded_split is None:
            return
        # The fingerprint also changes when a file is only touched; the split itself is what must not change.
        recorded = self.recorded_split
        if any(recorded[key] != split[key] for key in recorded.keys() & split.keys() if key != "fingerprint"):
            raise UsageError(f"the data of {self.run_dir} changed since the run started (its train/validation "
                             f"split differs from split.json); put the original data back, or start a new run")

    def previous_resumes(self, folder: Path) -> list[dict]:
        """The resume log of a model continued in place."""
        if not self.in_place or not (folder / rundir.METRICS).is_file():
            return []
        try:
            return list(rundir.read_json(folder / rundir.METRICS).get("resumes", []))
        except UsageError:
            return []


def plan_from_args(args) -> Plan:
    experiment = EXPERIMENTS[args.experiment]
    if args.arch is not None and not experiment.takes_arch:
        raise UsageError(f"--arch: --experiment {experiment.name} trains {', '.join(experiment.archs or ())}; "
                         f"--arch applies to the experiments that train one model from scratch: "
                         f"{', '.join(name for name, each in EXPERIMENTS.items() if each.takes_arch)}")
    for flag, value, allowed in (("--data", args.data, ("image_folder", "cifar100")),
                                 ("--image-size", args.image_size, ("image_folder",)),
                                 ("--classes", args.classes, ("cifar100",))):
        if value is not None and experiment.data not in allowed:
            raise UsageError(f"{flag} does not apply to --experiment {experiment.name}")
    if args.weights is not None and not experiment.pretrained:
        raise UsageError("--weights only applies to --experiment flowers-resnet18")
    if not args.feature_cache and experiment.trainable is None:
        raise UsageError(f"--no-feature-cache only applies to --experiment flowers-resnet18, whose frozen "
                         f"backbone's features are cached; {experiment.name} trains every layer")
    repeats = args.repeats or experiment.repeats
    if repeats > 1 and len(experiment.study_arms(experiment.archs or ())) < 2:
        raise UsageError(f"--repeats applies to the studies (cifar100-pooling, cifar100-improved); "
                         f"{experiment.name} trains one model: run it again with another --seed")
    archs = (args.arch,) if args.arch is not None else experiment.archs or (TrainConfig().arch,)
    config = TrainConfig(arch=archs[0], experiment=experiment.name, epochs=args.epochs or experiment.epochs,
                         **flags.values(args, TrainConfig))
    data = DataOptions(experiment.name, str(Path(args.data).absolute()) if args.data else None,
                       args.image_size or experiment.image_size, args.classes, args.val_fraction, args.seed)
    return Plan(experiment, archs, config, data, args.weights, args.download, repeats)


def new_job(args, framework: str) -> Job:
    plan = plan_from_args(args)
    out = args.out or rundir.default_run_dir(framework, plan.experiment.name if plan.experiment.archs
                                             else plan.config.arch)
    return Job(plan, Path(out), framework)


@dataclass
class UnitRun:
    """What every step of one unit's training reads: where it writes, and whether this process writes at all."""

    backend: Backend
    spec: ModelSpec
    job: Job
    unit: Unit
    data: PreparedData
    timings: Timings
    start: Checkpoint | None  # the finished epoch a resumed unit continues from
    writes: bool  # of several processes, rank 0 alone writes the run directory
    folder: Path = field(init=False)

    def __post_init__(self):
        self.folder = unit_dir(self.job.run_dir, self.unit)

    @property
    def config(self) -> TrainConfig:
        return self.unit.config
