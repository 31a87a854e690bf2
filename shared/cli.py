"""The one command-line parser of ``cnnlab_torch.train`` and ``cnnlab_tf.train``: the flags are identical because
they are defined once. Parsing imports no framework, so ``--help`` and bad flags answer at once."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from shared.config import TrainConfig
from shared.data import DATASETS
from shared.registry import ARCHITECTURES

DEVICES = ("auto", "cpu", "cuda")


class UsageError(Exception):
    """A mistake the user can fix: printed as one line, exit status 2, no traceback."""


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse prints usage + message; the user needs only the message
        sys.stderr.write(f"{self.prog}: error: {message} (see --help)\n")
        raise SystemExit(2)


def _number_above_zero(convert, kind: str):
    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not value > 0:
            raise argparse.ArgumentTypeError(f"must be a positive {kind}, got {text!r}")
        return value
    return parse


def _one_of(allowed):
    def parse(text: str) -> str:
        if text not in allowed:
            raise argparse.ArgumentTypeError(f"{text!r} is not one of: {', '.join(allowed)}")
        return text
    return parse


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive), got {text!r}")
    return value


def build_parser(prog: str) -> argparse.ArgumentParser:
    defaults = TrainConfig()
    parser = _OneLineParser(prog=prog, description="Train a cnnlab model, then save its checkpoint, neutral weights, "
                            "ONNX export, metrics and curves into a new run directory.")
    parser.add_argument("--arch", type=_one_of(sorted(ARCHITECTURES)), default=defaults.arch,
                        help=f"architecture from the spec registry: {', '.join(sorted(ARCHITECTURES))} "
                             f"(default: %(default)s)")
    parser.add_argument("--dataset", type=_one_of(sorted(DATASETS)), default=defaults.dataset,
                        help="dataset; 'digits' is scikit-learn's embedded handwritten digits at 32x32x3, "
                             "no download needed (default: %(default)s)")
    parser.add_argument("--epochs", type=_number_above_zero(int, "whole number"), default=defaults.epochs,
                        help="passes over the training split (default: %(default)s)")
    parser.add_argument("--batch-size", type=_number_above_zero(int, "whole number"), default=defaults.batch_size,
                        help="images per optimizer step (default: %(default)s)")
    parser.add_argument("--lr", type=_number_above_zero(float, "number"), default=defaults.lr,
                        help="Adam learning rate (default: %(default)s)")
    parser.add_argument("--val-fraction", type=_fraction, default=defaults.val_fraction,
                        help="share of each class held out for validation (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=defaults.seed,
                        help="seed of the split, the initial weights and the batch order; the same seed gives both "
                             "backends the same run (default: %(default)s)")
    parser.add_argument("--device", type=_one_of(DEVICES), default="auto",
                        help="auto picks CUDA when the framework sees a GPU, else the CPU (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=None,
                        help="new run directory to create; refused if it exists "
                             "(default: runs/<framework>-<arch>-<date>-<time>)")
    return parser


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(arch=args.arch, dataset=args.dataset, epochs=args.epochs, batch_size=args.batch_size,
                       lr=args.lr, val_fraction=args.val_fraction, seed=args.seed)
