"""What ``python -m cnnlab_<backend>.train`` does, written once for both backends.

The backend is loaded only after the flags are checked, so a bad flag answers before TensorFlow or PyTorch import.
The run directory is written as training goes (metrics, checkpoint and neutral weights after every epoch), so an
interrupted run keeps its last finished epoch.
"""

from __future__ import annotations

import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from shared import rundir
from shared.cli import UsageError, build_parser, config_from_args
from shared.config import TrainConfig
from shared.data import DATASETS, Dataset, stratified_split, write_split
from shared.init import initial_weights
from shared.plots import plot_history
from shared.registry import build_spec
from shared.specs import ModelSpec
from shared.weights_io import save_weights

# File names inside a run directory.
METRICS, SPLIT, WEIGHTS, ONNX, CURVES = "metrics.json", "split.json", "weights.npz", "model.onnx", "curves.png"


@dataclass(frozen=True)
class Backend:
    """The functions a backend provides; ``cnnlab_torch.backend`` and ``cnnlab_tf.backend`` fill it the same way."""

    framework: str  # "torch" or "tf"
    version: str  # the framework's version string
    checkpoint_name: str  # native checkpoint file name in a run directory
    select_device: Callable[[str], str]  # "auto" | "cpu" | "cuda" -> description; UsageError if unavailable
    build_model: Callable[[ModelSpec], Any]
    set_weights: Callable[[Any, ModelSpec, dict], None]  # canonical weights -> model
    get_weights: Callable[[Any, ModelSpec], dict]  # model -> canonical weights
    count_trainable: Callable[[Any], int]
    fit: Callable[[Any, Dataset, Dataset, TrainConfig, Callable[[dict], None]], list[dict]]
    predict_logits: Callable[[Any, np.ndarray, int], np.ndarray]
    save_checkpoint: Callable[[Any, Path], None]
    export_onnx: Callable[[Any, ModelSpec, Path, np.ndarray], dict]  # -> self-check report


def main(framework: str, load_backend: Callable[[], Backend], argv: list[str] | None = None) -> int:
    prog = f"cnnlab_{framework}.train"
    args = build_parser(prog).parse_args(argv)
    config = config_from_args(args)
    out = args.out or rundir.default_run_dir(framework, config.arch)
    try:
        rundir.check_new(out)
        backend = load_backend()
        device = backend.select_device(args.device)
        dataset = DATASETS[config.dataset]()
        try:
            spec = build_spec(config.arch, len(dataset.class_names), dataset.image_size)
        except ValueError as error:
            raise UsageError(str(error)) from None
        run_dir = rundir.create(out)
    except UsageError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2
    return train(backend, spec, dataset, config, device, run_dir)


def train(backend: Backend, spec: ModelSpec, dataset: Dataset, config: TrainConfig, device: str,
          run_dir: Path) -> int:
    split = stratified_split(dataset.labels, config.val_fraction, config.seed)
    write_split(run_dir / SPLIT, split)
    train_set, val_set = dataset.subset(split.train), dataset.subset(split.val)

    model = backend.build_model(spec)
    backend.set_weights(model, spec, initial_weights(spec, config.seed))
    metrics = {
        "framework": backend.framework, "framework_version": backend.version, "python": platform.python_version(),
        "arch": spec.name, "dataset": dataset.name, "classes": list(dataset.class_names),
        "image_size": spec.image_size, "params_trainable": backend.count_trainable(model), "device": device,
        "config": config.to_json(), "train_images": len(split.train), "val_images": len(split.val),
        "status": "running", "seconds": 0.0, "history": [],
    }
    print(f"{backend.framework} {backend.version} on {device}: {spec.name}, "
          f"{metrics['params_trainable']:,} trainable parameters; {dataset.name}: "
          f"{len(split.train)} train / {len(split.val)} val images, {spec.classes} classes; run dir {run_dir}")
    rundir.write_json(run_dir / METRICS, metrics)

    started = time.perf_counter()

    def save_epoch(record: dict) -> None:
        # Everything a finished epoch produced goes to disk now, so an interruption loses at most one epoch.
        metrics["history"].append(record)
        metrics["seconds"] = time.perf_counter() - started
        backend.save_checkpoint(model, run_dir / backend.checkpoint_name)
        save_weights(run_dir / WEIGHTS, spec, backend.get_weights(model, spec))
        plot_history(metrics["history"], run_dir / CURVES, f"{spec.name} on {dataset.name} ({backend.framework})")
        rundir.write_json(run_dir / METRICS, metrics)

    try:
        backend.fit(model, train_set, val_set, config, save_epoch)
    except KeyboardInterrupt:
        metrics["status"] = "interrupted"
        rundir.write_json(run_dir / METRICS, metrics)
        print(f"\ninterrupted: {run_dir} keeps the {len(metrics['history'])} finished epoch(s)", file=sys.stderr)
        return 130

    check_images = val_set.images[:8].astype(np.float32)
    metrics["onnx"] = backend.export_onnx(model, spec, run_dir / ONNX, check_images)
    metrics["seconds_per_epoch"] = float(np.mean([record["seconds"] for record in metrics["history"]]))
    metrics["status"] = "complete"
    rundir.write_json(run_dir / METRICS, metrics)
    final = metrics["history"][-1]
    print(f"done in {metrics['seconds']:.1f}s ({metrics['seconds_per_epoch']:.2f}s/epoch): "
          f"val acc {100 * final['val_acc']:.2f}%; ONNX matches the native model to "
          f"{metrics['onnx']['max_abs_diff']:.1e}; wrote {run_dir}")
    return 0
