"""What ``python -m cnnlab_<backend>.evaluate RUN_DIR`` does, written once for both backends: reload a finished run
in a fresh process and recompute its validation accuracy.

A run of the same framework is reloaded from its native checkpoint; a run of the other framework (or any run, with
``--neutral``) from its neutral ``weights.npz`` (``shared.run.trained``). The data is loaded again from the
options the run recorded, through the same cache, so the validation images are the ones it was measured on. A study
directory evaluates its best arm (cifar100-pooling: ``best/``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from collections.abc import Callable

from shared.formats import history as keys
from shared.data.dataset import fingerprint
from shared.formats import rundir
from shared.commands.cli import OneLineParser, parse_or_exit, run_command
from shared.util.errors import EXIT_NOT_REPRODUCED, EXIT_OK, EXIT_USAGE, UsageError
from shared.run.experiments import recorded_validation
from shared.training.metrics import accuracy
from shared.run.trained import find_run, load_trained

# Same framework, same weights, same images, same code: the accuracy must come back exactly. Across frameworks the
# logits differ by float32 rounding (shared/formats/tolerances.py), which can flip an image whose top two logits tie.
MAX_CROSS_FRAMEWORK_ACC_DIFFERENCE = 0.01


def main(framework: str, load_backend: Callable, argv: list[str] | None = None) -> int:
    prog = f"cnnlab_{framework}.evaluate"
    parser = OneLineParser(prog=prog, description="Reload a finished run in this framework and recompute its "
                            "validation accuracy.")
    parser.add_argument("run_dir", type=Path, help="a run directory written by cnnlab_torch.train or "
                        "cnnlab_tf.train (a study directory evaluates its best arm)")
    parser.add_argument("--neutral", action="store_true", help="load weights.npz even when the run's native "
                        "checkpoint is from this framework")
    args = parse_or_exit(parser, argv)
    return run_command(prog, lambda: evaluate(framework, load_backend, args, prog))


def evaluate(framework: str, load_backend: Callable, args, prog: str) -> int:
    """The evaluation the parsed flags ask for, printed; its exit status."""
    try:
        run_dir = find_run(args.run_dir)
        metrics = rundir.read_finished_metrics(run_dir, "evaluate")
        split = rundir.read_split(run_dir) if (run_dir / rundir.SPLIT).is_file() else {}
        images, labels, data_note = recorded_validation(metrics, split)
        trained = load_trained(prog, framework, load_backend(), run_dir, metrics, args.neutral)
    except UsageError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    if data_note:
        print(f"{prog}: note: {data_note}", file=sys.stderr)
    backend, spec, native = load_backend(), trained.spec, trained.native
    logits = backend.predict_logits(trained.model, images, 64)
    measured = accuracy(logits, labels)
    recorded = metrics["history"][-1][keys.VAL_ACC]
    same = measured == recorded if native else abs(measured - recorded) <= MAX_CROSS_FRAMEWORK_ACC_DIFFERENCE
    # An accuracy measured on other images proves nothing, even when it happens to be the same number
    data_changed = metrics.get("val_fingerprint") not in (None, fingerprint(images, labels))
    verdict = ("NOT reproduced: the data changed since training (these validation images are not the ones the run "
               "recorded; put its data back to reproduce it)" if data_changed
               else "reproduced" if same else "NOT reproduced")
    print(f"{run_dir}: {spec.name} from {trained.source}, {len(labels)} validation images: accuracy "
          f"{100 * measured:.2f}% (the run recorded {100 * recorded:.2f}%): {verdict}")
    return EXIT_OK if same and not data_changed else EXIT_NOT_REPRODUCED
