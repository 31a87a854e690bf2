"""Learning-rate schedules as data: ``TrainConfig.lr_schedule`` names one, and both backends set the optimizer's
rate to ``learning_rate(...)`` before every step, so the two frameworks follow the same curve step by step.

The rate is a function of (epoch, batch) and the run's settings only, never of the optimizer's state, so a resumed
run continues the same curve. A schedule that depends on the total number of epochs (cosine) would bend differently
if a finished run were extended; ``shared.run.resume`` refuses that extension instead of quietly changing the run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from collections.abc import Callable



@dataclass(frozen=True)
class Schedule:
    """A learning-rate curve: ``rate(lr, epochs, steps_per_epoch, done)`` is the rate of the step that follows
    ``done`` steps; ``extendable``: a finished run can be extended with --epochs and still follow the curve of a
    straight run of that length."""

    rate: Callable[[float, int, int, int], float]
    extendable: bool


def _constant(lr: float, epochs: int, steps_per_epoch: int, done: int) -> float:
    return lr  # --lr throughout (the seed labs)


def _cosine(lr: float, epochs: int, steps_per_epoch: int, done: int) -> float:
    # from --lr down to 0 over the run's steps, half a cosine wave (no restarts)
    return lr * 0.5 * (1.0 + math.cos(math.pi * done / (epochs * steps_per_epoch)))


SCHEDULES: dict[str, Schedule] = {
    "constant": Schedule(_constant, extendable=True),
    "cosine": Schedule(_cosine, extendable=False),
}


def learning_rate(schedule: str, lr: float, epochs: int, steps_per_epoch: int, epoch: int, batch: int) -> float:
    """The rate of step ``batch`` (1-based) of ``epoch`` (1-based) of an ``epochs``-epoch run."""
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown lr_schedule {schedule!r}; choose from: {', '.join(SCHEDULES)}")
    done = (epoch - 1) * steps_per_epoch + (batch - 1)  # steps taken before this one
    return SCHEDULES[schedule].rate(lr, epochs, steps_per_epoch, done)


def extendable(schedule: str) -> bool:
    return SCHEDULES[schedule].extendable
