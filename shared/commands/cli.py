"""The one command-line parser of ``cnnlab_torch.train`` and ``cnnlab_tf.train``: the flags are identical because
they are defined once. Parsing imports no framework, so ``--help`` and bad flags answer at once."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

from shared.training.config import TrainConfig
from shared.training.distributed import DEFAULT_PEER_TIMEOUT
from shared.util import signals
from shared.util.errors import EXIT_USAGE, FlagError, UsageError
from shared.util.output import EXIT_CLOSED_PIPE, ClosedPipe, closed_pipe_is_quiet
from shared.formats.onnx_check import LOWEST_OPSET, OPSET, check_opset
from shared.run.experiments import EXPERIMENTS
from shared.training.precision import PRECISIONS
from shared.model.registry import ARCHITECTURES
from shared.training.schedule import SCHEDULES

DEVICES = ("auto", "cpu", "cuda")


class OneLineParser(argparse.ArgumentParser):
    """Raises ``FlagError`` instead of printing usage and exiting, so the Python API (``shared.commands.api``) gets an
    exception; ``parse_or_exit`` gives the command line its one-line message."""

    def error(self, message: str):
        raise FlagError(message)


def parse_or_exit(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """The parsed flags, or one line on stderr and exit status ``EXIT_USAGE``: argparse's usage block would bury the
    message."""
    try:
        return parser.parse_args(argv)
    except FlagError as error:
        sys.stderr.write(f"{parser.prog}: error: {error} (see --help)\n")
        raise SystemExit(EXIT_USAGE) from None


def run_command(prog: str, work: Callable[[], int], stopped: str = "") -> int:
    """The exit status of ``work()``, a command that uses a trained model, ended as every such command ends: Ctrl-C
    and SIGTERM as one line ("stopped" and ``stopped``, what happened to its output) and 130 or 143, a closed stdout
    (``| head``) quietly (``shared.util.output``)."""
    try:
        with signals.stop_requests(), closed_pipe_is_quiet():  # a stop during a runtime's import stays a stop
            return work()
    except KeyboardInterrupt as stop:
        print(f"\n{prog}: stopped{stopped}", file=sys.stderr)
        return signals.exit_status(stop)
    except ClosedPipe:
        return EXIT_CLOSED_PIPE


def _number(convert, within, expected: str):
    """A flag's value: ``convert`` parses the text and ``within`` accepts the number (comparisons refuse nan),
    else one message saying what was expected."""
    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not within(value):
            raise argparse.ArgumentTypeError(f"must be {expected}, got {text!r}")
        return value
    return parse


POSITIVE_WHOLE = _number(int, lambda value: 0 < value, "a positive whole number")
_POSITIVE = _number(float, lambda value: 0 < value < float("inf"), "a positive number")
_NON_NEGATIVE = _number(float, lambda value: 0.0 <= value < float("inf"), "a number 0 or above")
_FRACTION = _number(float, lambda value: 0.0 < value < 1.0, "between 0 and 1 (exclusive)")
# NumPy's generators take non-negative seeds
_SEED = _number(int, lambda value: 0 <= value < 2**63, "a whole number from 0 to 2**63 - 1")


def _one_of(allowed):
    def parse(text: str) -> str:
        if text not in allowed:
            raise argparse.ArgumentTypeError(f"{text!r} is not one of: {', '.join(allowed)}")
        return text
    return parse


def opset_flag(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number from {LOWEST_OPSET} to {OPSET}, got {text!r}")
    try:
        return check_opset(value)
    except UsageError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _class_list(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated class names, got {text!r}")
    return names


def build_parser(prog: str) -> argparse.ArgumentParser:
    defaults = TrainConfig()
    experiments = "; ".join(f"{name}: {experiment.description}" for name, experiment in EXPERIMENTS.items())
    parser = OneLineParser(prog=prog, allow_abbrev=False, description="Train a cnnlab model, then save its checkpoint, neutral weights, "
                            "ONNX export, metrics, curves and reports into a new run directory.")
    parser.add_argument("--experiment", type=_one_of(list(EXPERIMENTS)), default="digits",
                        help=f"the lab to run. {experiments} (default: %(default)s)")
    parser.add_argument("--arch", type=_one_of(sorted(ARCHITECTURES)), default=None,
                        help=f"architecture for --experiment digits or flowers: {', '.join(sorted(ARCHITECTURES))} "
                             f"(default: {defaults.arch} for digits, flowers_baseline for flowers); the other "
                             f"experiments fix their own")
    parser.add_argument("--data", type=Path, default=None,
                        help="the data: an image folder with one subfolder per class (flowers experiments) or "
                             "cifar-100-python.tar.gz (cifar100-pooling, cifar100-improved); default: under $CNNLAB_HOME "
                             "(~/.cache/cnnlab)")
    parser.add_argument("--download", action="store_true",
                        help="fetch the experiment's data (and ImageNet weights) when they are not there yet")
    parser.add_argument("--image-size", type=POSITIVE_WHOLE, default=None,
                        help="side in pixels that images are resized to (flowers experiments; default: 224)")
    parser.add_argument("--classes", type=_class_list, default=None,
                        help="comma-separated CIFAR-100 fine-label names for the cifar100 experiments "
                             "(default: apple,orange,pear)")
    parser.add_argument("--weights", type=Path, default=None,
                        help="starting weights for flowers-resnet18: torchvision's resnet18-f37072fd.pth or a "
                             "cnnlab resnet18 .npz (default: the ImageNet checkpoint, found in the cache)")
    parser.add_argument("--epochs", type=POSITIVE_WHOLE, default=None,
                        help="passes over the training split (default: the experiment's, 10 for digits)")
    parser.add_argument("--batch-size", type=POSITIVE_WHOLE, default=defaults.batch_size,
                        help="images per optimizer step (default: %(default)s)")
    parser.add_argument("--lr", type=_POSITIVE, default=defaults.lr,
                        help="Adam learning rate (default: %(default)s)")
    parser.add_argument("--lr-schedule", type=_one_of(list(SCHEDULES)), default=defaults.lr_schedule,
                        help="constant: --lr throughout; cosine: from --lr down to 0 over the run's steps (a finished "
                             "cosine run cannot be extended with --resume --epochs) (default: %(default)s)")
    parser.add_argument("--weight-decay", type=_NON_NEGATIVE, default=defaults.weight_decay,
                        help="L2 penalty added to the gradient, as torch.optim.Adam's weight_decay "
                             "(default: %(default)s)")
    parser.add_argument("--val-fraction", type=_FRACTION, default=defaults.val_fraction,
                        help="share of each class held out for validation (digits; image folders smaller than "
                             "2000 images; larger ones hold out 1000 images as the lab does) (default: %(default)s)")
    parser.add_argument("--seed", type=_SEED, default=defaults.seed,
                        help="seed of the split, the initial weights and the batch order; the same seed gives both "
                             "backends the same run (default: %(default)s)")
    parser.add_argument("--repeats", type=POSITIVE_WHOLE, default=None,
                        help="studies: train each arm from this many seeds (--seed, --seed + 1, ...) and report the "
                             "mean and std of its accuracy (default: 3 for cifar100-improved, 1 for cifar100-pooling)")
    parser.add_argument("--precision", type=_one_of(list(PRECISIONS)), default=defaults.precision,
                        help="; ".join(f"{name}: {mode.description}" for name, mode in PRECISIONS.items())
                             + " (default: %(default)s)")
    parser.add_argument("--compile", action="store_true",
                        help="compile the training step: torch.compile in PyTorch (falls back to eager with a "
                             "warning when no C++ compiler is found), XLA (jit_compile) in Keras; helps on GPUs, "
                             "is measured slower on CPUs (see the README's benchmark)")
    parser.add_argument("--no-feature-cache", dest="feature_cache", action="store_false",
                        help="flowers-resnet18: run the frozen backbone on every image every epoch instead of "
                             "training the head on its features, computed once and cached in $CNNLAB_HOME/features")
    parser.add_argument("--opset", type=opset_flag, default=defaults.opset,
                        help=f"ONNX opset of model.onnx, from {LOWEST_OPSET} (the oldest runtimes) to {OPSET}; both "
                             f"frameworks write the same opset and IR version (default: %(default)s)")
    parser.add_argument("--device", type=_one_of(DEVICES), default="auto",
                        help="auto picks CUDA when the framework sees a GPU, else the CPU (default: %(default)s)")
    parser.add_argument("--replicas", type=POSITIVE_WHOLE, default=1,
                        help="Keras: train on this many local devices with tf.distribute.MirroredStrategy (GPUs, or "
                             "the CPU split into logical devices), --batch-size staying the global batch. PyTorch "
                             "runs one process per device instead: torchrun --nproc_per_node N (default: %(default)s)")
    parser.add_argument("--peer-timeout", type=_POSITIVE, default=DEFAULT_PEER_TIMEOUT, metavar="SECONDS",
                        help="several processes (torchrun, TF_CONFIG workers): how long each waits for the others to "
                             "start; then it names the addresses that never answered and exits with status 2 "
                             "(default: %(default)g)")
    parser.add_argument("--out", type=Path, default=None,
                        help="new run directory to create; refused if it exists "
                             "(default: runs/<framework>-<experiment>-<date>-<time>)")
    parser.add_argument("--resume", type=Path, default=None, metavar="RUN_DIR",
                        help="continue RUN_DIR from its last finished epoch with its own settings: in place, or "
                             "with --out into a new directory (also a run of the other framework); --epochs N "
                             "extends it to N epochs in all")
    return parser
