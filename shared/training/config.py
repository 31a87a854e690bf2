"""Training settings as data, each declared once with its flag (``shared.util.flags``). Every optimizer
hyperparameter is explicit, because the frameworks' defaults differ (Adam epsilon is 1e-8 in PyTorch and 1e-7 in
Keras) and both backends must run the same optimizer."""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass

from shared.data.augment import Augmentation
from shared.formats.onnx_check import LOWEST_OPSET, OPSET, check_opset
from shared.model.registry import ARCHITECTURES
from shared.training.precision import PRECISIONS
from shared.training.schedule import SCHEDULES
from shared.util.errors import UsageError
from shared.util.flags import FRACTION, NON_NEGATIVE, POSITIVE, POSITIVE_WHOLE, SEED, one_of, setting

DEFAULT_ARCH = "cifar_cnn_max"


def opset_flag(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a whole number from {LOWEST_OPSET} to {OPSET}, got {text!r}") from None
    try:
        return check_opset(value)
    except UsageError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


@dataclass(frozen=True)
class TrainConfig:
    arch: str = setting(DEFAULT_ARCH, f"architecture for --experiment digits or flowers: "
                        f"{', '.join(sorted(ARCHITECTURES))} (default: {DEFAULT_ARCH} for digits, the experiment's "
                        f"own for flowers); the other experiments fix their own", one_of(sorted(ARCHITECTURES)),
                        group="what to train", decided_later=True)
    experiment: str = "digits"  # a name from shared.run.experiments.EXPERIMENTS (its flag: shared.run.options)
    epochs: int = setting(10, "passes over the training split (default: the experiment's own, which --experiment "
                          "lists); with --resume, the new total", POSITIVE_WHOLE, resumable=True, decided_later=True)
    batch_size: int = setting(32, "images per optimizer step", POSITIVE_WHOLE)
    lr: float = setting(1e-3, "Adam learning rate", POSITIVE)
    beta1: float = 0.9  # Adam first-moment decay
    beta2: float = 0.999  # Adam second-moment decay
    eps: float = 1e-8  # Adam epsilon, PyTorch placement: added to the bias-corrected sqrt(v)
    weight_decay: float = setting(0.0, "L2 penalty added to the gradient, as torch.optim.Adam's weight_decay",
                                  NON_NEGATIVE)
    lr_schedule: str = setting("constant", "constant: --lr throughout; cosine: from --lr down to 0 over the run's "
                               "steps (a finished cosine run cannot be extended with --resume --epochs)",
                               one_of(list(SCHEDULES)))
    augment_padding: int = 0  # random crop from the image zero-padded by this many pixels (0: no crop)
    augment_flip: bool = False  # random horizontal flip (shared.data.augment)
    val_fraction: float = setting(0.2, "share of each class held out for validation (digits; image folders smaller "
                                  "than 2000 images; larger ones hold out 1000 images as the lab does)", FRACTION)
    seed: int = setting(0, "seed of the split, the initial weights and the batch order; the same seed gives both "
                        "backends the same run", SEED)
    precision: str = setting("32-true", "; ".join(f"{name}: {mode.description}" for name, mode in PRECISIONS.items()),
                             one_of(list(PRECISIONS)))
    compile: bool = setting(False, "compile the training step: torch.compile in PyTorch (falls back to eager with a "
                            "warning when no C++ compiler is found), XLA (jit_compile) in Keras; helps on GPUs, is "
                            "measured slower on CPUs (see docs/speed.md)")
    # Train a frozen backbone's head on its features, computed once and cached (shared.run.feature_cache), instead of
    # running the backbone on every image every epoch; the same steps up to float rounding, only faster.
    feature_cache: bool = setting(True, "flowers-resnet18: run the frozen backbone on every image every epoch "
                                  "instead of training the head on its features, computed once and cached in "
                                  "$CNNLAB_HOME/features", flag="--no-feature-cache", resumable=True)
    opset: int = setting(OPSET, f"ONNX opset of model.onnx, from {LOWEST_OPSET} (the oldest runtimes) to {OPSET}; "
                         f"both frameworks write the same opset and IR version", opset_flag)

    @property
    def augmentation(self) -> Augmentation:
        return Augmentation(self.augment_padding, self.augment_flip)

    def to_json(self) -> dict:
        return asdict(self)
