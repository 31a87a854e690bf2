"""What a model costs to train and to serve, measured inside a framework's benchmark worker (``python -m
cnnlab_torch.bench`` / ``cnnlab_tf.bench``, started by ``shared.measure.footprint`` for ``compare`` and by
``shared.bench.main`` for its latency table). Written once for both frameworks; the backend's ``bench`` module
hands in what only it has (``WorkerKit``).

- ``train_memory``: a run's training steps at its batch size, image size and precision, on the device it trained
  on: the process's resident set before them and its peak during them, and the framework's GPU peak.
- ``run_latency``: a run's native model and exported files, each at batch 1 and 32 (``shared.measure.latency``).
- ``export_latency``: the same for a registered architecture with the shared initial weights, exported to a
  temporary folder in every format this framework writes.

The worker process sets its thread count before the framework starts (``--threads``, default 1: a phone's one
core), so the native models and the runtimes run with the same number.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any
from collections.abc import Callable

import numpy as np

from shared.measure.worker import SEED, quiet, seeded_model, synthetic_data
from shared.measure.latency import LatencyPlan, batch_latencies, sample_images
from shared.measure.memory import DevicePeak, measure_peak
from shared.run.trained import load_trained
from shared.formats import rundir
from shared.formats.exported import read_description
from shared.formats.runtimes import Runner, default_file_name, export_kinds, format_of, open_runner
from shared.training.backend import Backend, ExportOptions
from shared.training.config import TrainConfig
from shared.training.precision import DEFAULT_PRECISION

MEMORY_STEPS = 4  # training steps measured: the first traces and allocates, the later ones are the steady step


@dataclass(frozen=True)
class WorkerKit:
    backend: Backend
    device_peak: DevicePeak  # the framework's GPU memory peak
    runners: dict[str, Callable[[Path, int], Runner]]  # openers of the files that need this framework (ExecuTorch)


def run_config(metrics: dict, epochs: int) -> TrainConfig:
    """The run's own training settings (``metrics.json``'s ``config``), for ``epochs`` epochs."""
    known = {field.name for field in fields(TrainConfig)}
    return replace(TrainConfig(**{key: value for key, value in metrics["config"].items() if key in known}),
                   epochs=epochs)


def train_memory(kit: WorkerKit, run: str) -> dict:
    """``MEMORY_STEPS`` training steps of the run's model (its shared initial weights: what memory a step takes
    does not depend on the values) on synthetic images of its size, one epoch of cnnlab's ``fit``."""
    backend = kit.backend
    metrics = rundir.read_finished_metrics(Path(run), "compare")
    config = run_config(metrics, 1)
    spec, model = seeded_model(backend, metrics["arch"], len(metrics["classes"]), metrics["image_size"],
                               config.precision)
    if metrics.get("trainable"):  # a frozen backbone, as the run froze it (the full model runs in every step)
        backend.freeze(model, spec, tuple(metrics["trainable"]))
    train, val = synthetic_data(metrics["image_size"], len(metrics["classes"]), MEMORY_STEPS * config.batch_size, 1)
    optimizer = backend.make_optimizer(model, config)

    def steps() -> None:
        with quiet():
            backend.fit(model, optimizer, train, val, config)

    return {"batch_size": config.batch_size, "steps": MEMORY_STEPS, "image_size": metrics["image_size"],
            "precision": config.precision, "frozen": bool(metrics.get("trainable")),
            **measure_peak(steps, kit.device_peak)}


def native_latency(backend: Backend, model: Any, source: str, images: np.ndarray, plan: LatencyPlan) -> dict:
    """The framework's own inference (``predict_logits``: NumPy in, NumPy logits out, as a service calls it)."""
    return {"format": "native", "quantize": None, "runtime": f"{backend.framework} {backend.version}",
            "file": source, "latency": batch_latencies(lambda batch: backend.predict_logits(model, batch, len(batch)),
                                                      images, plan)}


def file_latency(kit: WorkerKit, path: Path, quantize: str | None, threads: int, images: np.ndarray,
                 plan: LatencyPlan) -> dict:
    """An exported file in its runtime; a file that cannot be opened or run is reported, not fatal."""
    row: dict[str, Any] = {"format": format_of(path).name, "quantize": quantize, "file": path.name}
    try:
        runner = open_runner(path, threads, kit.runners)
        row.update(runtime=runner.runtime, latency=batch_latencies(
            lambda batch: runner(batch, batch_size=len(batch)), images, plan))
    except Exception as error:  # a missing runtime, a damaged file: the other rows still count
        row["error"] = f"{type(error).__name__}: {error}"
    return row


def _quantize(path: Path) -> str | None:
    with contextlib.suppress(Exception):
        return read_description(path)[0].get("quantize")
    return None


def run_latency(kit: WorkerKit, run: str, native: bool, files: list[str], threads: int, plan: dict) -> dict:
    """A run's native model (``native``) and the exported ``files`` in its folder, at the plan's batches."""
    backend, run_dir = kit.backend, Path(run)
    metrics = rundir.read_finished_metrics(run_dir, "compare")
    latency_plan = LatencyPlan(**{**plan, "batches": tuple(plan["batches"])})
    images = sample_images(max(latency_plan.batches), metrics["image_size"], SEED)
    rows = []
    if native:
        # the worker selected the run's device when it started; load_trained must not select it again
        trained = load_trained("shared.compare", backend.framework, backend, run_dir, metrics, select_device=False)
        rows.append(native_latency(backend, trained.model, trained.source, images, latency_plan))
    rows += [file_latency(kit, run_dir / name, _quantize(run_dir / name), threads, images, latency_plan)
             for name in files]
    return {"runtimes": rows}


def export_latency(kit: WorkerKit, arch: str, classes: int, image_size: int, threads: int, plan: dict) -> dict:
    """A registered architecture with the shared initial weights: native, then every file this framework exports
    (to a temporary folder), each with its size and export time."""
    backend = kit.backend
    latency_plan = LatencyPlan(**{**plan, "batches": tuple(plan["batches"])})
    spec, model = seeded_model(backend, arch, classes, image_size, DEFAULT_PRECISION)
    images = sample_images(max(latency_plan.batches), image_size, SEED)
    rows = [native_latency(backend, model, "initial weights", images, latency_plan)]
    with tempfile.TemporaryDirectory(prefix="cnnlab-latency-") as folder:
        for format_name, quantize in export_kinds(backend.framework):
            path = Path(folder) / default_file_name(format_name, quantize)
            started = time.perf_counter()
            try:
                backend.export(format_name, model, spec, path, ExportOptions(images[:2], quantize=quantize))
            except Exception as error:  # an exporter that fails on one model leaves the rest of the table
                rows.append({"format": format_name, "quantize": quantize, "file": path.name,
                             "error": f"export failed: {type(error).__name__}: {error}"})
                continue
            seconds = time.perf_counter() - started
            row = file_latency(kit, path, quantize, threads, images, latency_plan)
            rows.append({**row, "bytes": path.stat().st_size, "export_seconds": seconds})
    return {"runtimes": rows}


def footprint_tasks(kit: WorkerKit) -> dict[str, Callable[..., dict]]:
    """The tasks a backend's worker adds to its job's menu (``shared.measure.worker.run_worker``)."""
    return {"train_memory": lambda **kwargs: train_memory(kit, **kwargs),
            "run_latency": lambda **kwargs: run_latency(kit, **kwargs),
            "export_latency": lambda **kwargs: export_latency(kit, **kwargs)}
