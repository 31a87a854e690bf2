"""What ``python -m cnnlab_<backend>.evaluate RUN_DIR`` does, written once for both backends: reload a finished run
in a fresh process and recompute its validation accuracy.

A run of the same framework is reloaded from its native checkpoint; a run of the other framework (or any run, with
``--neutral``) from its neutral ``weights.npz``. The data is loaded again from the options the run recorded, through
the same cache, so the validation images are the ones it was measured on. A study directory evaluates its best
arm (cifar100-pooling: ``best/``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable


from shared.formats import rundir
from shared.commands.cli import OneLineParser, parse_or_exit
from shared.util.errors import EXIT_NOT_REPRODUCED, EXIT_OK, EXIT_USAGE, UsageError
from shared.run.experiments import recorded_validation
from shared.training.metrics import accuracy
from shared.training.precision import DEFAULT_PRECISION
from shared.model.registry import build_spec
from shared.formats.weights_io import load_weights

# Same framework, same weights, same images, same code: the accuracy must come back exactly. Across frameworks the
# logits differ by float32 rounding (shared/formats/tolerances.py), which can flip an image whose top two logits tie.
MAX_CROSS_FRAMEWORK_ACC_DIFFERENCE = 0.01


def find_run(path: Path) -> Path:
    """The model folder of a run: the run itself, a pooling study's ``best/``, or a study's best arm."""
    if (path / rundir.BEST / rundir.METRICS).is_file():
        return path / rundir.BEST
    table = path / f"{rundir.COMPARISON}.json"
    if not (path / rundir.METRICS).is_file() and table.is_file():
        return path / rundir.read_json(table, "study table")["best"]
    if not (path / rundir.METRICS).is_file():
        raise UsageError(f"{path} is not a finished cnnlab run directory (no {rundir.METRICS}); pass the --out of a "
                         f"train run")
    return path


def main(framework: str, load_backend: Callable, argv: list[str] | None = None) -> int:
    prog = f"cnnlab_{framework}.evaluate"
    parser = OneLineParser(prog=prog, description="Reload a finished run in this framework and recompute its "
                            "validation accuracy.")
    parser.add_argument("run_dir", type=Path, help="a run directory written by cnnlab_torch.train or "
                        "cnnlab_tf.train (a study directory evaluates its best arm)")
    parser.add_argument("--neutral", action="store_true", help="load weights.npz even when the run's native "
                        "checkpoint is from this framework")
    args = parse_or_exit(parser, argv)
    try:
        run_dir = find_run(args.run_dir)
        metrics = rundir.read_finished_metrics(run_dir, "evaluate")
        split = rundir.read_split(run_dir) if (run_dir / rundir.SPLIT).is_file() else {}
        images, labels, data_note = recorded_validation(metrics, split)
        spec = build_spec(metrics["arch"], len(metrics["classes"]), metrics["image_size"])
        backend = load_backend()
        # The device the run trained on, where there is one: a CPU run's accuracy is reproduced exactly on the CPU.
        backend.select_device("auto" if str(metrics.get("device", "cpu")).startswith("cuda") else "cpu")
        model = backend.build_model(spec, metrics["config"].get("precision", DEFAULT_PRECISION))
        native = metrics["framework"] == framework and not args.neutral
        if native and not (run_dir / backend.checkpoint_name).is_file():
            print(f"{prog}: note: {run_dir / backend.checkpoint_name} is missing; loading the neutral "
                  f"{rundir.WEIGHTS} instead", file=sys.stderr)
            native = False
        if native:
            backend.load_checkpoint(model, run_dir / backend.checkpoint_name)
            source = backend.checkpoint_name
        else:
            backend.set_weights(model, spec, load_weights(run_dir / rundir.WEIGHTS, spec))
            source = f"{rundir.WEIGHTS} (trained in {metrics['framework']})"
    except UsageError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    if data_note:
        print(f"{prog}: note: {data_note}", file=sys.stderr)
    logits = backend.predict_logits(model, images, 64)
    measured = accuracy(logits, labels)
    recorded = metrics["history"][-1]["val_acc"]
    same = measured == recorded if native else abs(measured - recorded) <= MAX_CROSS_FRAMEWORK_ACC_DIFFERENCE
    print(f"{run_dir}: {spec.name} from {source}, {len(labels)} validation images: accuracy "
          f"{100 * measured:.2f}% (the run recorded {100 * recorded:.2f}%): "
          f"{'reproduced' if same else 'NOT reproduced'}")
    return EXIT_OK if same else EXIT_NOT_REPRODUCED
