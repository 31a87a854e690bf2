"""What ``python -m cnnlab_<backend>.train`` does, written once for both backends.

The backend is loaded only after the flags are checked, so a bad flag answers before TensorFlow or PyTorch import.
The run directory is written as training goes (metrics, checkpoint and neutral weights after every epoch), so an
interrupted run keeps its last finished epoch.
"""

from __future__ import annotations

import json
import platform
import shutil
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from shared import pretrained, reports, rundir
from shared.cli import UsageError, build_parser
from shared.config import TrainConfig
from shared.data import Dataset
from shared.experiments import EXPERIMENTS, DataOptions, Experiment, PreparedData, cnnlab_home, prepare_data
from shared.init import initial_weights
from shared.plots import plot_history, plot_predictions
from shared.registry import build_spec
from shared.specs import ModelSpec
from shared.weights_io import save_weights

# File names inside a run directory.
METRICS, SPLIT, WEIGHTS, ONNX, CURVES = "metrics.json", "split.json", "weights.npz", "model.onnx", "curves.png"
SUMMARY, REPORT, PREDICTIONS = "summary.txt", "classification_report.txt", "predictions.png"
COMPARISON, BEST = "comparison", "best"  # the pooling study's table (.md, .json) and its best variant's folder


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
    freeze: Callable[[Any, ModelSpec, tuple[str, ...]], list[str]]  # trainable prefixes -> trainable names
    port_checkpoint: Callable[[Path, Path], None]  # torchvision .pth -> neutral .npz
    load_checkpoint: Callable[[Any, Path], None]  # native checkpoint -> model


@dataclass(frozen=True)
class Plan:
    """What the flags ask for, checked: the experiment, its architectures, the settings and the data."""

    experiment: Experiment
    archs: tuple[str, ...]
    config: TrainConfig
    data: DataOptions
    weights: Path | None
    download: bool


def plan_from_args(args) -> Plan:
    experiment = EXPERIMENTS[args.experiment]
    if experiment.archs is not None and args.arch is not None:
        raise UsageError(f"--arch: --experiment {experiment.name} trains {', '.join(experiment.archs)}; "
                         f"--arch only applies to --experiment digits")
    for flag, value, allowed in (("--data", args.data, ("image_folder", "cifar100")),
                                 ("--image-size", args.image_size, ("image_folder",)),
                                 ("--classes", args.classes, ("cifar100",))):
        if value is not None and experiment.data not in allowed:
            raise UsageError(f"{flag} does not apply to --experiment {experiment.name}")
    if args.weights is not None and not experiment.pretrained:
        raise UsageError("--weights only applies to --experiment flowers-resnet18")
    archs = experiment.archs or (args.arch or TrainConfig().arch,)
    config = TrainConfig(arch=archs[0], experiment=experiment.name, epochs=args.epochs or experiment.epochs,
                         batch_size=args.batch_size, lr=args.lr, val_fraction=args.val_fraction, seed=args.seed)
    data = DataOptions(experiment.name, str(args.data) if args.data else None,
                       args.image_size or experiment.image_size, args.classes, args.val_fraction, args.seed)
    return Plan(experiment, archs, config, data, args.weights, args.download)


def main(framework: str, load_backend: Callable[[], Backend], argv: list[str] | None = None) -> int:
    prog = f"cnnlab_{framework}.train"
    args = build_parser(prog).parse_args(argv)
    try:
        # Every check a user can fail comes before the run directory exists, so a refused run leaves nothing.
        plan = plan_from_args(args)
        out = args.out or rundir.default_run_dir(framework, plan.experiment.name if plan.experiment.archs
                                                 else plan.config.arch)
        rundir.check_new(out)
        data = prepare_data(plan.data, plan.download)
        try:
            specs = [build_spec(arch, len(data.train.class_names), data.train.image_size) for arch in plan.archs]
        except ValueError as error:
            raise UsageError(str(error)) from None
        checkpoint = (pretrained.locate(cnnlab_home(), plan.weights, plan.download) if plan.experiment.pretrained
                      else None)
        backend = load_backend()
        device = backend.select_device(args.device)
        backbone = None
        if checkpoint is not None:
            backbone = pretrained.backbone_weights(checkpoint, specs[0], backend.port_checkpoint, cnnlab_home())
        run_dir = rundir.create(out)
    except UsageError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2
    if len(specs) == 1:
        return train(backend, specs[0], data, plan, device, run_dir, backbone)
    return train_study(backend, specs, data, plan, device, run_dir)


def train_study(backend: Backend, specs: list[ModelSpec], data: PreparedData, plan: Plan, device: str,
                run_dir: Path) -> int:
    """Each variant trains on the same data with the same settings into its own folder; then the comparison table,
    and a copy of the best variant (checkpoint, neutral weights, ONNX, metrics) in ``best/``."""
    results = {}
    for spec in specs:
        print(f"\n=== {spec.name} ===")
        status = train(backend, spec, data, plan, device, rundir.create(run_dir / spec.name))
        if status != 0:
            return status
        results[spec.name] = json.loads((run_dir / spec.name / METRICS).read_text())
    table = reports.compare_variants(results)
    title = f"{plan.experiment.name}: {data.train.name}, {backend.framework}"
    rundir.write_json(run_dir / f"{COMPARISON}.json", {"framework": backend.framework, **table})
    markdown = reports.comparison_markdown(table, title)
    reports.write_text(run_dir / f"{COMPARISON}.md", markdown)
    shutil.copytree(run_dir / table["best"], run_dir / BEST)
    print(f"\n{markdown}\nbest variant copied to {run_dir / BEST}")
    return 0


def train(backend: Backend, spec: ModelSpec, data: PreparedData, plan: Plan, device: str, run_dir: Path,
          backbone: dict | None = None) -> int:
    config = replace(plan.config, arch=spec.name)
    rundir.write_json(run_dir / SPLIT, data.split)
    train_set, val_set = data.train, data.val

    model = backend.build_model(spec)
    weights = initial_weights(spec, config.seed)
    if backbone is not None:
        weights.update(backbone)  # ImageNet backbone; the new head keeps its seeded initial weights
    backend.set_weights(model, spec, weights)
    trainable = (backend.freeze(model, spec, plan.experiment.trainable) if plan.experiment.trainable else None)
    summary = reports.model_summary(spec, trainable)
    reports.write_text(run_dir / SUMMARY, summary)
    print(summary)
    metrics = {
        "framework": backend.framework, "framework_version": backend.version, "python": platform.python_version(),
        "experiment": plan.experiment.name, "arch": spec.name, "dataset": train_set.name,
        "classes": list(train_set.class_names), "image_size": spec.image_size,
        "params_trainable": backend.count_trainable(model), "device": device, "config": config.to_json(),
        "data": {**plan.data.to_json(), "image_size": spec.image_size, "classes": list(train_set.class_names)},
        "data_source": data.source, "skipped_images": list(train_set.skipped),
        "pretrained": backbone is not None, "trainable": trainable,
        "train_images": len(train_set.labels), "val_images": len(val_set.labels),
        "status": "running", "seconds": 0.0, "history": [],
    }
    print(f"{backend.framework} {backend.version} on {device}: {spec.name}, "
          f"{metrics['params_trainable']:,} trainable parameters; {train_set.name}: "
          f"{len(train_set.labels)} train / {len(val_set.labels)} val images, {spec.classes} classes; "
          f"run dir {run_dir}")
    if train_set.skipped:
        print(f"warning: {len(train_set.skipped)} unreadable image(s) skipped (listed in the classification report)",
              file=sys.stderr)
    rundir.write_json(run_dir / METRICS, metrics)

    started = time.perf_counter()

    def save_epoch(record: dict) -> None:
        # Everything a finished epoch produced goes to disk now, so an interruption loses at most one epoch.
        metrics["history"].append(record)
        metrics["seconds"] = time.perf_counter() - started
        backend.save_checkpoint(model, run_dir / backend.checkpoint_name)
        save_weights(run_dir / WEIGHTS, spec, backend.get_weights(model, spec))
        plot_history(metrics["history"], run_dir / CURVES, f"{spec.name} on {train_set.name} ({backend.framework})")
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
    write_reports(backend, model, train_set, val_set, config.batch_size, run_dir,
                  f"{spec.name} ({backend.framework})")
    # The first epoch also traces/compiles (tf.function) and warms caches; from the second on it is steady state.
    seconds = [record["seconds"] for record in metrics["history"]]
    metrics["first_epoch_seconds"] = seconds[0]
    metrics["seconds_per_epoch"] = float(np.mean(seconds[1:] if len(seconds) > 1 else seconds))
    metrics["images_per_second"] = len(train_set.labels) / metrics["seconds_per_epoch"]
    metrics["status"] = "complete"
    rundir.write_json(run_dir / METRICS, metrics)
    final = metrics["history"][-1]
    print(f"done in {metrics['seconds']:.1f}s ({metrics['seconds_per_epoch']:.2f}s/epoch): "
          f"val acc {100 * final['val_acc']:.2f}%; ONNX matches the native model to "
          f"{metrics['onnx']['max_abs_diff']:.1e}; wrote {run_dir}")
    return 0


def write_reports(backend: Backend, model, train_set: Dataset, val_set: Dataset, batch_size: int, run_dir: Path,
                  title: str) -> None:
    """Per-class report for train and validation, and a grid of validation predictions."""
    logits = {part: backend.predict_logits(model, dataset.images, batch_size)
              for part, dataset in (("train", train_set), ("validation", val_set))}
    text, data = reports.classification_reports(
        {"train": (train_set.labels, logits["train"]), "validation": (val_set.labels, logits["validation"])},
        train_set.class_names, train_set.skipped)
    reports.write_text(run_dir / REPORT, text)
    rundir.write_json(run_dir / REPORT.replace(".txt", ".json"), data)
    print(text)
    grid = np.random.default_rng(0).permutation(len(val_set.labels))[:9]
    plot_predictions(val_set.images[grid], val_set.labels[grid], logits["validation"][grid].argmax(axis=1),
                     val_set.class_names, run_dir / PREDICTIONS, title)
