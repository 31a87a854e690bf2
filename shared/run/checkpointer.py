"""What a unit does after every finished epoch (``EpochCheckpointer``): its checkpoint, native and neutral
(``shared.formats.checkpoints``), the published model files, metrics.json, TensorBoard and the curves."""

from __future__ import annotations

import time
from pathlib import Path

from shared.formats import history as keys
from shared.formats import checkpoints, rundir
from shared.formats.optimizer_state import save_optimizer_state
from shared.formats.weights_io import save_weights
from shared.report.plots import Curves
from shared.run.plan import UnitRun
from shared.training import tensorboard_log
from shared.util import signals


class EpochCheckpointer:
    """Called after every epoch: everything the epoch produced goes to disk now (the checkpoint, native and
    neutral, metrics.json, TensorBoard, the curves), so an interruption loses at most one epoch. A stop requested
    while the checkpoint is written waits until it is complete."""

    def __init__(self, run: UnitRun, model, optimizer, metrics: dict, curves: Curves,
                 log: tensorboard_log.TrainingLog | None):
        self.run, self.model, self.optimizer, self.metrics, self.curves, self.log = (run, model, optimizer, metrics,
                                                                                     curves, log)
        self.history: list[dict] = metrics["history"]
        self.started, self.seconds_before = time.perf_counter(), metrics["seconds"]

    def __call__(self, record: dict) -> None:
        run = self.run
        self.history.append(record)
        run.timings.add("epochs", record[keys.SECONDS])
        if not run.writes:
            return
        assert self.log is not None  # a unit that writes has its TensorBoard log (shared.run.unit.fit_unit)
        with run.timings.phase("checkpoints"):
            self.metrics["seconds"] = self.seconds_before + time.perf_counter() - self.started
            with signals.deferred():
                saved = checkpoints.commit(run.folder, record[keys.EPOCH], run.backend.framework, self.history,
                                           self.metrics["seconds"], self.write_files)
                checkpoints.publish(saved, run.folder, (run.backend.checkpoint_name, rundir.WEIGHTS))
                rundir.write_json(run.folder / rundir.METRICS, self.metrics)
            self.log.epoch(record)
            self.curves.after_epoch(self.history)

    def write_files(self, target: Path) -> None:
        """The model and Adam's state into ``target``, in the framework's own format and the neutral one."""
        backend, spec, config = self.run.backend, self.run.spec, self.run.config
        backend.save_checkpoint(self.model, target / backend.checkpoint_name)
        backend.save_optimizer(self.optimizer, target / backend.optimizer_name)
        save_weights(target / rundir.WEIGHTS, spec, backend.get_weights(self.model, spec))
        save_optimizer_state(target / rundir.OPTIMIZER, spec, backend.get_optimizer_state(self.model, spec,
                                                                                         self.optimizer),
                             {"lr": config.lr, "betas": [config.beta1, config.beta2], "eps": config.eps,
                              "weight_decay": config.weight_decay})
