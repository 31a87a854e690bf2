"""One model's training, start to finish (``train_unit``): prepare the model, record the run, fit it with a
checkpoint after every epoch, then export and report. A single run is one unit; a study (``shared.run.study``)
trains one unit per arm and seed."""

from __future__ import annotations

import platform
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from shared.formats import history as keys
from shared.data.dataset import fingerprint
from shared.formats import checkpoints, rundir, verified
from shared.formats.optimizer_state import load_optimizer_state
from shared.formats.weights_io import load_weights
from shared.model.init import initial_weights
from shared.model.shapes import parameters
from shared.model.specs import ModelSpec
from shared.report import reports
from shared.report.plots import Curves
from shared.run import feature_cache
from shared.run.checkpointer import EpochCheckpointer
from shared.run.experiments import Experiment, PreparedData
from shared.run.plan import Job, Unit, UnitRun
from shared.run.outcome import (diverged_message, interrupted_message, not_written_message, stopped,
                                write_reports)
from shared.training import tensorboard_log
from shared.training.backend import Backend, ExportOptions
from shared.training.config import TrainConfig
from shared.util import signals
from shared.util.errors import EXIT_DIVERGED, EXIT_NOT_WRITTEN, EXIT_OK, EXIT_PEER_LOST, Diverged, PeerLost
from shared.util.timings import Timings


@dataclass
class UnitResult:
    """One model's training: the command line's exit status, and the model for the API."""

    exit_status: int
    model: Any


@dataclass
class PreparedModel:
    """A model ready to train: built, frozen where the experiment says, with its first weights and its optimizer."""

    model: Any
    optimizer: Any
    trainable: list[str]  # canonical names of the parameters that train
    frozen: bool  # the experiment trains a part of the model only
    loaded: str | None  # what a resumed model was loaded from, for the log


def train_unit(backend: Backend, spec: ModelSpec, data: PreparedData, job: Job, device: str, unit: Unit,
               timings: Timings, backbone: dict | None = None) -> UnitResult:
    """Train one unit into its folder; a stop or a divergence ends it cleanly, marked, with what finished kept."""
    world = backend.current_world()
    run = UnitRun(backend, spec, job, unit, data, timings, job.starts.get(unit.folder), world.is_main)
    if run.writes:
        rundir.write_split(run.folder, data.split)
    prepared = prepare_model(backend, spec, job.plan.experiment, run.config, run.start, backbone)
    first_trainable = feature_cache.first_trainable_layer(spec, job.plan.experiment.trainable)
    # Features of augmented images change every step: there is nothing to cache.
    cached = run.config.feature_cache and first_trainable is not None and not run.config.augmentation.active
    summary = reports.model_summary(spec, prepared.trainable if prepared.frozen else None, run.config.precision)
    if run.writes:
        reports.write_text(run.folder / rundir.SUMMARY, summary)
    print(summary)
    metrics = run_record(run, device, world, prepared, cached, job.previous_resumes(run.folder))
    _announce(run, device, metrics, prepared.loaded)
    if run.writes:
        rundir.write_json(run.folder / rundir.METRICS, metrics)
    curves = Curves(run.folder / rundir.CURVES, f"{spec.name} on {data.train.name} ({backend.framework})")
    ended = fit_unit(run, prepared, metrics, curves, first_trainable if cached else None)
    if ended is not None:
        return ended
    if not run.writes:  # the export and the reports are rank 0's
        return UnitResult(EXIT_OK, prepared.model)
    return complete(run, prepared.model, metrics, curves)


def prepare_model(backend: Backend, spec: ModelSpec, experiment: Experiment, config: TrainConfig,
                  start: checkpoints.Checkpoint | None, backbone: dict | None) -> PreparedModel:
    """Fresh from the seed (and the ImageNet backbone), or from a finished epoch."""
    model = backend.build_model(spec, config.precision)
    frozen = experiment.trainable is not None
    trainable = (backend.freeze(model, spec, experiment.trainable) if experiment.trainable is not None else
                 [param.name for param in parameters(spec) if param.trainable])
    if start is None:
        weights = initial_weights(spec, config.seed)
        if backbone is not None:
            weights.update(backbone)  # ImageNet backbone; the new head keeps its seeded initial weights
        backend.set_weights(model, spec, weights)
    optimizer = backend.make_optimizer(model, config)
    loaded = restore(backend, model, spec, optimizer, start, trainable) if start is not None else None
    return PreparedModel(model, optimizer, trainable, frozen, loaded)


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


def run_record(run: UnitRun, device: str, world, prepared: PreparedModel, cached: bool,
               previous_resumes: list[dict]) -> dict:
    """metrics.json as the unit starts: what trains, on what and how; its history grows as epochs finish."""
    plan, config, start, backend, spec = run.job.plan, run.config, run.start, run.backend, run.spec
    train_set, val_set = run.data.train, run.data.val
    metrics = {
        "framework": backend.framework, "framework_version": backend.version, "python": platform.python_version(),
        "experiment": plan.experiment.name, "arch": spec.name, "dataset": train_set.name,
        "classes": list(train_set.class_names), "image_size": spec.image_size,
        "params_trainable": backend.count_trainable(prepared.model), "device": device, "processes": world.size,
        "replicas": world.replicas,
        "precision": config.precision,
        "compile": config.compile, "feature_cache": cached, "config": config.to_json(),
        "data": {**plan.data.to_json(), "image_size": spec.image_size, "classes": list(train_set.class_names)},
        "data_source": run.data.source, "skipped_images": list(train_set.skipped),
        "pretrained": plan.experiment.pretrained, "trainable": prepared.trainable if prepared.frozen else None,
        "train_images": len(train_set.labels), "val_images": len(val_set.labels),
        "status": rundir.RUNNING, "process": rundir.running_marker(), "seconds": start.seconds if start else 0.0,
        "resumes": list(previous_resumes), "history": list(start.history) if start else [],
    }
    if run.job.resumed_from is not None:
        metrics["resumed_from"] = {**run.job.resumed_from, "epoch": start.epoch if start else 0}
    if start is not None:
        metrics["resumes"].append({"from_epoch": start.epoch, "framework": backend.framework,
                                   "loaded": prepared.loaded, "time": time.strftime("%Y-%m-%d %H:%M:%S")})
    return metrics


def _announce(run: UnitRun, device: str, metrics: dict, loaded: str | None) -> None:
    train_set, val_set, backend, config = run.data.train, run.data.val, run.backend, run.config
    print(f"{backend.framework} {backend.version} on {device}, {config.precision}: {run.spec.name}, "
          f"{metrics['params_trainable']:,} trainable parameters; {train_set.name}: "
          f"{len(train_set.labels)} train / {len(val_set.labels)} val images, {run.spec.classes} classes; "
          f"run dir {run.folder}")
    if run.start is not None:
        print(f"resuming at epoch {run.start.epoch + 1} of {config.epochs} from {loaded}")
    if train_set.skipped:
        print(f"warning: {len(train_set.skipped)} unreadable image(s) skipped (listed in the classification report)",
              file=sys.stderr)


def fit_unit(run: UnitRun, prepared: PreparedModel, metrics: dict, curves: Curves,
             features_from: str | None) -> UnitResult | None:
    """The epochs, with a checkpoint after each; ``features_from``: train the head from that layer on the frozen
    backbone's cached features. None when every epoch finished; else how the unit ended (a stop, a divergence)."""
    backend, config, history = run.backend, run.config, metrics["history"]
    log = tensorboard_log.TrainingLog(backend.event_writer(run.folder / tensorboard_log.FOLDER)) if run.writes \
        else None
    save_epoch = EpochCheckpointer(run, prepared.model, prepared.optimizer, metrics, curves, log)
    run.timings.lap("start_up")  # everything since the start (a study: since the last model) that is not an import
    try:
        with signals.stops_kept():
            fit_model, fit_train, fit_val = prepared.model, run.data.train, run.data.val
            if features_from is not None:
                fit_model, fit_train, fit_val = _head_on_features(run, prepared.model, features_from, metrics)
            backend.fit(fit_model, prepared.optimizer, fit_train, fit_val, config, save_epoch,
                        run.start.epoch + 1 if run.start else 1, on_batches=log.batches if log else None)
    except KeyboardInterrupt as stop:
        if not run.writes:
            return UnitResult(signals.exit_status(stop), prepared.model)
        message = interrupted_message(run.folder, run.job.run_dir, history)
        return UnitResult(stopped(metrics, run.folder, rundir.INTERRUPTED, message, signals.exit_status(stop), curves,
                               history, run.timings), prepared.model)
    except Diverged as diverged:
        if not run.writes:
            return UnitResult(EXIT_DIVERGED, prepared.model)
        return UnitResult(stopped(metrics, run.folder, rundir.DIVERGED, diverged_message(diverged, history, config.lr),
                               EXIT_DIVERGED, curves, history, run.timings), prepared.model)
    except OSError as error:  # a full or read-only disk: the checkpoint, TensorBoard or the curves
        return UnitResult(not_written(run, prepared.trainable, metrics, curves, error), prepared.model)
    except PeerLost as lost:
        message = (f"stopped: {lost}; {run.job.run_dir} keeps the finished epochs: start every worker again with "
                   f"--resume {run.job.run_dir}")
        if not run.writes:
            print(f"\n{message}", file=sys.stderr)
            return UnitResult(EXIT_PEER_LOST, prepared.model)
        return UnitResult(stopped(metrics, run.folder, rundir.INTERRUPTED, message, EXIT_PEER_LOST, curves,
                                  history, run.timings), prepared.model)
    finally:
        if log is not None:
            log.close()
    return None


def not_written(run: UnitRun, trainable: list[str], metrics: dict, curves: Curves, error: OSError) -> int:
    """A file the unit could not write: one line, status ``stopped`` with the reason, exit status 4."""
    needed = checkpoints.room_needed(run.folder, run.spec, trainable)
    message = not_written_message(error, run.folder, run.job.run_dir, needed)
    if not run.writes:
        print(f"\n{message}", file=sys.stderr)
        return EXIT_NOT_WRITTEN
    metrics["stop_reason"] = message
    return stopped(metrics, run.folder, rundir.STOPPED, message, EXIT_NOT_WRITTEN, curves, metrics["history"],
                   run.timings)


def _head_on_features(run: UnitRun, model, first_trainable: str, metrics: dict):
    """The head (``first_trainable`` on) and the training and validation sets as the frozen backbone's features,
    cached or computed now. The head shares the model's parameters, so the optimizer, checkpoints, reports and
    export see it train."""
    train_set, val_set = run.data.train, run.data.val
    features = feature_cache.feature_sets(run.backend, model, run.spec, first_trainable, train_set, val_set,
                                          run.config)
    metrics["feature_cache_hit"], metrics["feature_seconds"] = features.loaded, features.seconds
    how = ("loaded from the cache" if features.loaded
           else "computed and cached" if features.stored else "computed (the cache could not be written)")
    print(f"backbone features of {len(train_set.labels)} train + {len(val_set.labels)} val images {how} in "
          f"{features.seconds:.1f}s ({features.path}); training {first_trainable} on them")
    return run.backend.head_model(model, run.spec, first_trainable), features.train, features.val


def complete(run: UnitRun, model, metrics: dict, curves: Curves) -> UnitResult:
    """The export, the reports and the timings of a unit whose every epoch finished; metrics.json marked complete."""
    backend, spec, history, val_set = run.backend, run.spec, metrics["history"], run.data.val
    # The finished model's identity: every file of it records this id (shared.formats.verified)
    metrics["run_id"] = verified.new_run_id()
    try:
        with signals.stops_kept():  # the export imports onnxruntime, whose initialisation hides a stop (signals)
            with run.timings.phase("export"):
                check_images = val_set.images[:8].astype(np.float32)
                options = ExportOptions(check_images, run.config.opset,
                                        verified.onnx_metadata(verified.identity(metrics)))
                metrics["onnx"] = backend.export("onnx", model, spec, run.folder / rundir.ONNX, options)
            with run.timings.phase("reports"):
                curves.draw(history)
                write_reports(backend, model, run.data.train, val_set, run.config.batch_size, run.folder,
                              f"{spec.name} ({backend.framework})")
    except KeyboardInterrupt as stop:
        return UnitResult(stopped(metrics, run.folder, rundir.INTERRUPTED, f"interrupted after training, while "
                               f"exporting: all {len(history)} epochs are kept; --resume {run.job.run_dir} finishes "
                               f"the export", signals.exit_status(stop), curves, history, run.timings), model)
    except OSError as error:  # the ONNX file, a plot or a report: every epoch is kept all the same
        return UnitResult(not_written(run, [], metrics, curves, error), model)
    # The first epoch also traces/compiles (tf.function) and warms caches; from the second on it is steady state.
    seconds = [record[keys.SECONDS] for record in history]
    metrics["first_epoch_seconds"] = seconds[0]
    metrics["seconds_per_epoch"] = float(np.mean(seconds[1:] if len(seconds) > 1 else seconds))
    metrics["images_per_second"] = len(run.data.train.labels) / metrics["seconds_per_epoch"]
    # What loads the model later verifies each file against these, and evaluate the data against its fingerprint
    metrics["files"] = verified.record_files(run.folder, (backend.checkpoint_name, rundir.WEIGHTS, rundir.ONNX))
    metrics["val_fingerprint"] = fingerprint(val_set.images, val_set.labels)
    metrics["status"] = rundir.COMPLETE
    metrics.pop("process")
    metrics["timings"] = run.timings.take()
    rundir.write_json(run.folder / rundir.METRICS, metrics)
    print(f"done in {metrics['seconds']:.1f}s ({metrics['seconds_per_epoch']:.2f}s/epoch): "
          f"val acc {100 * history[-1][keys.VAL_ACC]:.2f}%; ONNX matches the native model to "
          f"{metrics['onnx']['max_abs_diff']:.1e}; wrote {run.folder}")
    return UnitResult(EXIT_OK, model)
