"""What ``python -m cnnlab_<backend>.train`` does, written once for both backends.

Start-up checks everything a user can get wrong, cheapest first, before the run directory exists and before the
framework is imported; a refused run leaves nothing behind. Training then writes the run directory as it goes: after
every epoch a complete checkpoint (``shared.formats.checkpoints``), so a run stopped in any way keeps its last finished
epoch and ``--resume`` continues it (``shared.run.resume``).
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from shared.formats import checkpoints, pretrained, rundir
from shared.report import reports, study_report
from shared.run import feature_cache
from shared.training import distributed, tensorboard_log
from shared.util import progress, signals
from shared.training.backend import Backend
from shared.training.config import TrainConfig
from shared.data.dataset import Dataset
from shared.util.errors import EXIT_DIVERGED, EXIT_OK, Diverged, UsageError
from shared.run.experiments import PreparedData, cnnlab_home, prepare_data
from shared.model.init import initial_weights
from shared.formats.optimizer_state import load_optimizer_state, save_optimizer_state
from shared.run.plan import Job, Unit, new_job, unit_dir
from shared.report.plots import Curves, plot_predictions
from shared.model.registry import build_spec
from shared.run.resume import plan_resume
from shared.model.shapes import parameters
from shared.model.specs import ModelSpec
from shared.util.timings import Timings
from shared.formats.weights_io import load_weights, save_weights


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
class Trained:
    """One model's training: the command line's exit status, and the model for the API."""

    exit_status: int
    model: Any


def execute(framework: str, load_backend: Callable[[], Backend], args, argv: list[str],
            started: float | None = None) -> Run:
    """Train what the parsed flags ask for. Raises ``UsageError`` (nothing written) for a mistake the user can fix,
    and ``KeyboardInterrupt`` for a stop before training began; a stop during training ends the run cleanly.
    ``started``: the clock reading the run's ``timings`` count from (the command line's process start); now when
    not given."""
    timings = Timings(started)
    with signals.stop_requests():
        job, backend, device, data, specs, backbone = start_up(framework, load_backend, args, argv, timings)
        if not job.plan.is_study:
            unit = job.plan.units()[0]
            trained = train(backend, specs[unit.arm.arch], data, job, device, unit, timings, backbone)
            backend.finish()
            if not backend.current_world().is_main:  # the run directory is rank 0's
                return Run(job.run_dir, _status(trained.exit_status), {}, trained.model, trained.exit_status)
            return Run(job.run_dir, *_status_and_metrics(job.run_dir), trained.model, trained.exit_status)
        exit_status, models = train_study(backend, specs, data, job, device, timings, backbone)
        backend.finish()
        if not backend.current_world().is_main:
            return Run(job.run_dir, _status(exit_status), {}, next(reversed(models.values()), None), exit_status)
        table = job.run_dir / f"{rundir.COMPARISON}.json"
        if exit_status == 0:
            metrics = rundir.read_json(table)
            best = models.get(metrics["best"]) or trained_model(backend, specs, job.run_dir / metrics["best"])
            return Run(job.run_dir, rundir.COMPLETE, metrics, best, exit_status)
        last = list(models)[-1] if models else None
        status, metrics = _status_and_metrics(unit_dir(job.run_dir, job.plan.units()[0]) if last is None else
                                              job.run_dir / last)
        return Run(job.run_dir, status, metrics, models.get(last), exit_status)


def trained_model(backend: Backend, specs: dict[str, ModelSpec], folder: Path):
    """The finished model in ``folder``, from its native checkpoint: for a resumed study whose best arm finished
    before this process started."""
    metrics = rundir.read_json(folder / rundir.METRICS)
    model = backend.build_model(specs[metrics["arch"]], metrics["precision"])
    backend.load_checkpoint(model, folder / backend.checkpoint_name)
    return model


def _status(exit_status: int) -> str:
    return {0: rundir.COMPLETE, EXIT_DIVERGED: rundir.DIVERGED}.get(exit_status, rundir.INTERRUPTED)


def _status_and_metrics(folder: Path) -> tuple[str, dict]:
    metrics = rundir.read_json(folder / rundir.METRICS)
    return metrics["status"], metrics


def start_up(framework: str, load_backend: Callable[[], Backend], args, argv: list[str], timings: Timings):
    """Every check a user can fail, cheapest first; the run directory is created last."""
    world = distributed.launched_world(framework)
    if not world.is_main:  # one process speaks for all: rank 0 prints, draws the progress bars and writes
        progress.quiet()
        sys.stdout = open(os.devnull, "w")
    job = plan_resume(args, argv, framework) if args.resume is not None else new_job(args, framework)
    plan = job.plan
    if world.distributed and plan.download:
        raise UsageError("--download with several processes would fetch the data once per process; download it "
                         "first with one process (the same command without torchrun or TF_CONFIG), then start "
                         "them")
    for arch in plan.archs:  # an image size the architecture cannot take, before any image is decoded
        try:
            build_spec(arch, 2, plan.data.image_size or 32)
        except ValueError as error:
            raise UsageError(f"--image-size: {error}") from None
    if not job.in_place:
        rundir.check_new(job.run_dir)
    data = prepare_data(plan.data, plan.download)
    if job.in_place:
        job.check_same_data(data.split)
    try:
        specs = {arch: build_spec(arch, len(data.train.class_names), data.train.image_size) for arch in plan.archs}
    except ValueError as error:
        raise UsageError(str(error)) from None
    needs_backbone = plan.experiment.pretrained and any(job.starts.get(unit.folder) is None for unit in plan.units())
    checkpoint = pretrained.locate(cnnlab_home(), plan.weights, plan.download) if needs_backbone else None
    with timings.phase("import"):
        backend = load_backend()
    device = backend.select_device(args.device, args.replicas)
    world = backend.current_world()
    job.run_dir = Path(backend.broadcast(str(job.run_dir)))  # its default name has rank 0's start time
    backbone = None
    if checkpoint is not None:
        backbone = pretrained.backbone_weights(checkpoint, specs[plan.archs[0]], backend.port_checkpoint,
                                               cnnlab_home())
    if world.is_main:
        if not job.in_place:
            rundir.create(job.run_dir)
        rundir.write_json(job.run_dir / rundir.RUN, plan.to_json(job.framework_started))
    return job, backend, device, data, specs, backbone


def train_study(backend: Backend, specs: dict[str, ModelSpec], data: PreparedData, job: Job, device: str,
                timings: Timings, backbone: dict | None) -> tuple[int, dict]:
    """Each arm trains on the same data, from each seed, into its own folder; then the comparison table (mean and
    std over the seeds, and the gain over the baseline arm where the experiment has one), the lab report, and for a
    study without a baseline a copy of the best arm's model files in ``best/``. Returns the exit status and the
    models trained in this process by their folder (an arm's first seed under the arm's name too)."""
    plan, writes = job.plan, backend.current_world().is_main
    folders, models = {}, {}
    for arm in plan.arms:
        folders[arm.name] = []
        for unit in plan.units(arm):
            folder = unit_dir(job.run_dir, unit)
            if unit.folder in job.done:
                print(f"\n=== {unit.folder}: complete, kept ===")
            else:
                print(f"\n=== {unit.folder} ===")
                if writes:
                    folder.mkdir(parents=True, exist_ok=True)
                trained = train(backend, specs[arm.arch], data, job, device, unit, timings, backbone)
                models[unit.folder] = trained.model
                if trained.exit_status != 0:
                    return trained.exit_status, models
            folders[arm.name].append(unit.folder)
        if plan.repeats > 1 and writes:  # the arm's folder holds a model too: its first seed's, as a single run
            copy_model_files(job.run_dir / folders[arm.name][0], job.run_dir / arm.name)
            if folders[arm.name][0] in models:
                models[arm.name] = models[folders[arm.name][0]]
    if not writes:
        return EXIT_OK, models
    results = {arm: [rundir.read_json(job.run_dir / folder / rundir.METRICS) for folder in arm_folders]
               for arm, arm_folders in folders.items()}
    table = reports.compare_variants(results, plan.experiment.baseline)
    for arm in plan.arms:
        recipe = {key: getattr(plan.units(arm)[0].config, key) for key in asdict(arm.recipe)}
        table["variants"][arm.name].update(runs=folders[arm.name], recipe=recipe)
    title = f"{plan.experiment.name}: {data.train.name}, {backend.framework}"
    table = {"framework": backend.framework, "experiment": plan.experiment.name, "title": title,
             "repeats": plan.repeats, "seeds": plan.seeds, **table}
    rundir.write_json(job.run_dir / f"{rundir.COMPARISON}.json", table)
    markdown = reports.comparison_markdown(table, title)
    reports.write_text(job.run_dir / f"{rundir.COMPARISON}.md", markdown)
    if plan.experiment.baseline is None:
        copy_model_files(job.run_dir / table["best"], job.run_dir / rundir.BEST, replace_old=True)
        where = f"best variant copied to {job.run_dir / rundir.BEST}"
    else:
        where = f"best arm: {job.run_dir / table['best']}"
    report = study_report.write_study_report(job.run_dir, table)
    print(f"\n{markdown}\n{where}; lab report {report}")
    return EXIT_OK, models


def copy_model_files(source: Path, target: Path, replace_old: bool = False) -> None:
    """A finished model's files (checkpoint, weights, ONNX, metrics, reports) into ``target``, without the
    training checkpoints or the repeats' own folders. ``replace_old``: an extended study may pick another arm."""
    if replace_old:
        shutil.rmtree(target, ignore_errors=True)
    # The event files stay with the seed that wrote them: a copy would show in TensorBoard as a run of its own.
    skipped = shutil.ignore_patterns(rundir.CHECKPOINTS, "seed-*", tensorboard_log.FOLDER)
    shutil.copytree(source, target, ignore=skipped, dirs_exist_ok=True)


def restore(backend: Backend, model, spec: ModelSpec, optimizer, start: checkpoints.Checkpoint,
            trainable: list[str]) -> str:
    """Load a finished epoch's weights and Adam state: the native files when this framework wrote them, else the
    neutral ones. Returns what was loaded, for the log."""
    if start.framework == backend.framework:
        backend.load_checkpoint(model, start.path(backend.checkpoint_name))
        backend.load_optimizer(optimizer, start.path(backend.optimizer_name))
        return f"{backend.checkpoint_name} and {backend.optimizer_name}"
    backend.set_weights(model, spec, load_weights(start.path(rundir.WEIGHTS), spec))
    backend.set_optimizer_state(model, spec, optimizer,
                                load_optimizer_state(start.path(rundir.OPTIMIZER), spec, trainable))
    return f"the neutral {rundir.WEIGHTS} and {rundir.OPTIMIZER} written by {start.framework}"


def train(backend: Backend, spec: ModelSpec, data: PreparedData, job: Job, device: str, unit: Unit,
          timings: Timings, backbone: dict | None = None) -> Trained:
    plan = job.plan
    config, folder = unit.config, unit_dir(job.run_dir, unit)
    start = job.starts.get(unit.folder)
    world = backend.current_world()
    writes = world.is_main  # of several processes, rank 0 alone writes the run directory
    if writes:
        rundir.write_json(folder / rundir.SPLIT, data.split)
    train_set, val_set = data.train, data.val

    # Model and optimizer: fresh from the seed (and the ImageNet backbone), or from a finished epoch.
    model = backend.build_model(spec, config.precision)
    frozen = plan.experiment.trainable is not None
    trainable = (backend.freeze(model, spec, plan.experiment.trainable) if frozen else
                 [param.name for param in parameters(spec) if not param.name.endswith(("running_mean", "running_var"))])
    if start is None:
        weights = initial_weights(spec, config.seed)
        if backbone is not None:
            weights.update(backbone)  # ImageNet backbone; the new head keeps its seeded initial weights
        backend.set_weights(model, spec, weights)
    optimizer = backend.make_optimizer(model, config)
    loaded = restore(backend, model, spec, optimizer, start, trainable) if start is not None else None

    # A frozen backbone whose features the head can train on, computed once (shared.run.feature_cache)
    first_trainable = feature_cache.first_trainable_layer(spec, plan.experiment.trainable)
    # Features of augmented images change every step: there is nothing to cache.
    cached = config.feature_cache and first_trainable is not None and not config.augmentation.active

    summary = reports.model_summary(spec, trainable if frozen else None, config.precision)
    if writes:
        reports.write_text(folder / rundir.SUMMARY, summary)
    print(summary)
    history = list(start.history) if start else []
    metrics = {
        "framework": backend.framework, "framework_version": backend.version, "python": platform.python_version(),
        "experiment": plan.experiment.name, "arch": spec.name, "dataset": train_set.name,
        "classes": list(train_set.class_names), "image_size": spec.image_size,
        "params_trainable": backend.count_trainable(model), "device": device, "processes": world.size,
        "replicas": world.replicas,
        "precision": config.precision,
        "compile": config.compile, "feature_cache": cached, "config": config.to_json(),
        "data": {**plan.data.to_json(), "image_size": spec.image_size, "classes": list(train_set.class_names)},
        "data_source": data.source, "skipped_images": list(train_set.skipped),
        "pretrained": plan.experiment.pretrained, "trainable": trainable if frozen else None,
        "train_images": len(train_set.labels), "val_images": len(val_set.labels),
        "status": rundir.RUNNING, "process": rundir.running_marker(), "seconds": start.seconds if start else 0.0,
        "resumes": job.previous_resumes(folder), "history": history,
    }
    if job.resumed_from is not None:
        metrics["resumed_from"] = {**job.resumed_from, "epoch": start.epoch if start else 0}
    if start is not None:
        metrics["resumes"].append({"from_epoch": start.epoch, "framework": backend.framework,
                                   "loaded": loaded, "time": time.strftime("%Y-%m-%d %H:%M:%S")})
    print(f"{backend.framework} {backend.version} on {device}, {config.precision}: {spec.name}, "
          f"{metrics['params_trainable']:,} trainable parameters; {train_set.name}: "
          f"{len(train_set.labels)} train / {len(val_set.labels)} val images, {spec.classes} classes; "
          f"run dir {folder}")
    if start is not None:
        print(f"resuming at epoch {start.epoch + 1} of {config.epochs} from {loaded}")
    if train_set.skipped:
        print(f"warning: {len(train_set.skipped)} unreadable image(s) skipped (listed in the classification report)",
              file=sys.stderr)
    if writes:
        rundir.write_json(folder / rundir.METRICS, metrics)

    started, seconds_before = time.perf_counter(), metrics["seconds"]

    def write_checkpoint_files(target: Path) -> None:
        backend.save_checkpoint(model, target / backend.checkpoint_name)
        backend.save_optimizer(optimizer, target / backend.optimizer_name)
        save_weights(target / rundir.WEIGHTS, spec, backend.get_weights(model, spec))
        save_optimizer_state(target / rundir.OPTIMIZER, spec, backend.get_optimizer_state(model, spec, optimizer),
                             {"lr": config.lr, "betas": [config.beta1, config.beta2], "eps": config.eps,
                              "weight_decay": config.weight_decay})

    log = tensorboard_log.TrainingLog(backend.summary_writer(folder / tensorboard_log.FOLDER)) if writes else None
    curves = Curves(folder / rundir.CURVES, f"{spec.name} on {train_set.name} ({backend.framework})")

    def save_epoch(record: dict) -> None:
        # Everything a finished epoch produced goes to disk now, so an interruption loses at most one epoch. A stop
        # requested while the checkpoint is written waits until it is complete.
        history.append(record)
        timings.add("epochs", record["seconds"])
        if not writes:
            return
        with timings.phase("checkpoints"):
            metrics["seconds"] = seconds_before + time.perf_counter() - started
            with signals.deferred():
                saved = checkpoints.commit(folder, record["epoch"], backend.framework, history, metrics["seconds"],
                                           write_checkpoint_files)
                checkpoints.publish(saved, folder, (backend.checkpoint_name, rundir.WEIGHTS))
                rundir.write_json(folder / rundir.METRICS, metrics)
            log.epoch(record)
            curves.after_epoch(history)

    timings.lap("start_up")  # everything since the start (a study: since the last model) that is not an import
    try:
        fit_model, fit_train, fit_val = model, train_set, val_set
        if cached:
            fit_model, fit_train, fit_val = head_on_features(backend, model, spec, first_trainable, train_set,
                                                             val_set, config, metrics)
        backend.fit(fit_model, optimizer, fit_train, fit_val, config, save_epoch, start.epoch + 1 if start else 1,
                    on_batches=log.batches if log else None)
    except KeyboardInterrupt as stop:
        if not writes:
            return Trained(signals.exit_status(stop), model)
        return Trained(stopped(metrics, folder, rundir.INTERRUPTED, interrupted_message(folder, job.run_dir, history),
                               signals.exit_status(stop), curves, history, timings), model)
    except Diverged as diverged:
        if not writes:
            return Trained(EXIT_DIVERGED, model)
        return Trained(stopped(metrics, folder, rundir.DIVERGED, diverged_message(diverged, history, config.lr),
                               EXIT_DIVERGED, curves, history, timings), model)
    finally:
        if log is not None:
            log.close()
    if not writes:  # the export and the reports are rank 0's
        return Trained(0, model)

    try:
        with timings.phase("export"):
            check_images = val_set.images[:8].astype(np.float32)
            metrics["onnx"] = backend.export_onnx(model, spec, folder / rundir.ONNX, check_images, opset=config.opset)
        with timings.phase("reports"):
            curves.draw(history)
            write_reports(backend, model, train_set, val_set, config.batch_size, folder,
                          f"{spec.name} ({backend.framework})")
    except KeyboardInterrupt as stop:
        return Trained(stopped(metrics, folder, rundir.INTERRUPTED, f"interrupted after training, while exporting: "
                               f"all {len(history)} epochs are kept; --resume {job.run_dir} finishes the export",
                               signals.exit_status(stop), curves, history, timings), model)
    # The first epoch also traces/compiles (tf.function) and warms caches; from the second on it is steady state.
    seconds = [record["seconds"] for record in history]
    metrics["first_epoch_seconds"] = seconds[0]
    metrics["seconds_per_epoch"] = float(np.mean(seconds[1:] if len(seconds) > 1 else seconds))
    metrics["images_per_second"] = len(train_set.labels) / metrics["seconds_per_epoch"]
    metrics["status"] = rundir.COMPLETE
    metrics.pop("process")
    metrics["timings"] = timings.take()
    rundir.write_json(folder / rundir.METRICS, metrics)
    final = history[-1]
    print(f"done in {metrics['seconds']:.1f}s ({metrics['seconds_per_epoch']:.2f}s/epoch): "
          f"val acc {100 * final['val_acc']:.2f}%; ONNX matches the native model to "
          f"{metrics['onnx']['max_abs_diff']:.1e}; wrote {folder}")
    return Trained(0, model)


def head_on_features(backend: Backend, model, spec: ModelSpec, first_trainable: str, train_set: Dataset,
                     val_set: Dataset, config: TrainConfig, metrics: dict) -> tuple[Any, Dataset, Dataset]:
    """The head (``first_trainable`` on) and the training and validation sets as the frozen backbone's features,
    cached or computed now. The head shares the model's parameters, so the optimizer, checkpoints, reports and
    export see it train."""
    features = feature_cache.feature_sets(backend, model, spec, first_trainable, train_set, val_set, config)
    metrics["feature_cache_hit"], metrics["feature_seconds"] = features.loaded, features.seconds
    how = "loaded from the cache" if features.loaded else "computed and cached"
    print(f"backbone features of {len(train_set.labels)} train + {len(val_set.labels)} val images {how} in "
          f"{features.seconds:.1f}s ({features.path}); training {first_trainable} on them")
    return backend.head_model(model, spec, first_trainable), features.train, features.val


def stopped(metrics: dict, folder: Path, status: str, message: str, exit_status: int, curves: Curves,
            history: list[dict], timings: Timings) -> int:
    """A run that ends early: marked, its finished epochs kept, its curves drawn, no export, one message."""
    metrics["status"] = status
    metrics.pop("process", None)
    try:
        with timings.phase("reports"):
            curves.draw(history)
    except KeyboardInterrupt:  # a second stop while they are drawn: the run is marked all the same, without them
        pass
    metrics["timings"] = timings.take()
    rundir.write_json(folder / rundir.METRICS, metrics)
    print(f"\n{message}", file=sys.stderr)
    return exit_status


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
    rundir.write_json(run_dir / rundir.REPORT.replace(".txt", ".json"), data)
    print(reports.classification_reports({"validation": parts["validation"]}, train_set.class_names)[0])
    print(reports.one_line_summary("train", data["train"], len(train_set.labels), run_dir / rundir.REPORT))
    grid = np.random.default_rng(0).permutation(len(val_set.labels))[:9]
    plot_predictions(val_set.images[grid], val_set.labels[grid], logits["validation"][grid].argmax(axis=1),
                     val_set.class_names, run_dir / rundir.PREDICTIONS, title)
