"""What ``python -m cnnlab_<backend>.evaluate RUN_DIR`` does, written once for both backends: reload a finished run
in a fresh process and recompute its validation accuracy.

A run of the same framework is reloaded from its native checkpoint; a run of the other framework (or any run, with
``--neutral``) from its neutral ``weights.npz`` (``shared.run.trained``). The data is loaded again from the
options the run recorded, through the same cache, so the validation images are the ones it was measured on. A study
directory evaluates its best arm (cifar100-pooling: ``best/``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Evaluation:
    """A finished run reloaded and measured again on the validation images it recorded."""

    run_dir: Path
    arch: str
    source: str  # which file the weights came from: the native checkpoint or weights.npz
    images: int
    accuracy: float  # measured now, a fraction
    recorded: float  # what the run recorded for its last epoch
    data_changed: bool  # the images are not the ones the run measured (its fingerprint differs)
    reproduced: bool  # the same accuracy (native) or within MAX_CROSS_FRAMEWORK_ACC_DIFFERENCE, on the same images
    note: str  # how the data was found again, when it says something the reader should know; else ""

    def summary(self) -> str:
        verdict = ("NOT reproduced: the data changed since training (these validation images are not the ones the "
                   "run recorded; put its data back to reproduce it)" if self.data_changed
                   else "reproduced" if self.reproduced else "NOT reproduced")
        return (f"{self.run_dir}: {self.arch} from {self.source}, {self.images} validation images: accuracy "
                f"{100 * self.accuracy:.2f}% (the run recorded {100 * self.recorded:.2f}%): {verdict}")


def evaluate_run(framework: str, load_backend: Callable, run: Path | str, neutral: bool = False) -> Evaluation:
    """Reload the finished run ``run`` (a run directory of either framework, or a study, which evaluates its best
    arm) in this framework and measure its validation accuracy again on the images it recorded. ``neutral`` loads
    weights.npz even where the native checkpoint is this framework's. Raises ``UsageError`` for a mistake the user
    can fix (no such run, an unfinished run, damaged files, missing data)."""
    run_dir = find_run(Path(run))
    metrics = rundir.read_finished_metrics(run_dir, "evaluate")
    split = rundir.read_split(run_dir) if (run_dir / rundir.SPLIT).is_file() else {}
    images, labels, data_note = recorded_validation(metrics, split)
    backend = load_backend()
    trained = load_trained(f"cnnlab_{framework}.evaluate", framework, backend, run_dir, metrics, neutral)
    logits = backend.predict_logits(trained.model, images, 64)
    measured = accuracy(logits, labels)
    recorded = metrics["history"][-1][keys.VAL_ACC]
    same = measured == recorded if trained.native else abs(measured - recorded) <= MAX_CROSS_FRAMEWORK_ACC_DIFFERENCE
    # An accuracy measured on other images proves nothing, even when it happens to be the same number
    data_changed = metrics.get("val_fingerprint") not in (None, fingerprint(images, labels))
    return Evaluation(run_dir, trained.spec.name, trained.source, len(labels), measured, recorded, data_changed,
                      same and not data_changed, data_note or "")


def evaluate(framework: str, load_backend: Callable, args, prog: str) -> int:
    """The evaluation the parsed flags ask for, printed; its exit status."""
    try:
        result = evaluate_run(framework, load_backend, args.run_dir, args.neutral)
    except UsageError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    if result.note:
        print(f"{prog}: note: {result.note}", file=sys.stderr)
    print(result.summary())
    return EXIT_OK if result.reproduced else EXIT_NOT_REPRODUCED
