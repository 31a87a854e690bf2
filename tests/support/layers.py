"""One layer of every type in ``shared.model.specs.Layer``, with an input it takes, for the tests that check every
place dispatching on the layer type has a rule for each; and a type no place knows, planted to see them refuse it."""

from __future__ import annotations

from dataclasses import dataclass

from shared.model.rules import PLACES
from shared.model.specs import (AvgPool2d, BatchNorm2d, Composite, Conv2d, Flatten, GlobalAvgPool2d, Linear, MaxPool2d, Normalize,
                                ReLU, ReLU6, Residual, Sequential)

_DOWNSAMPLE = Sequential((("0", Conv2d(3, 4, 1, stride=2, bias=False)), ("1", BatchNorm2d(4))))

# type -> (a layer of it, its input's canonical shape without the batch: (C, H, W), (features,), or NHWC's (H, W, C)
# for Normalize, which takes the model's input)
SAMPLES = {
    Normalize: (Normalize((0.5, 0.5, 0.5), (0.25, 0.25, 0.25)), (8, 8, 3)),
    Conv2d: (Conv2d(3, 4, 3, padding=1), (3, 8, 8)),
    BatchNorm2d: (BatchNorm2d(3), (3, 8, 8)),
    ReLU: (ReLU(), (3, 8, 8)),
    ReLU6: (ReLU6(), (3, 8, 8)),
    MaxPool2d: (MaxPool2d(2, 2), (3, 8, 8)),
    AvgPool2d: (AvgPool2d(2, 2), (3, 8, 8)),
    GlobalAvgPool2d: (GlobalAvgPool2d(), (3, 8, 8)),
    Flatten: (Flatten(), (3, 2, 2)),
    Linear: (Linear(12, 5), (12,)),
    Sequential: (Sequential((("0", Conv2d(3, 3, 3, padding=1, groups=3)), ("1", ReLU6()))), (3, 8, 8)),
    Residual: (Residual((("conv", Conv2d(3, 4, 3, stride=2, padding=1)), ("bn", BatchNorm2d(4))),
                        (("downsample", _DOWNSAMPLE),), (("relu", ReLU()),)), (3, 8, 8)),
}


@dataclass(frozen=True)
class Dropout:
    """A layer type outside the union: every dispatching place must raise TypeError for it, not pass it over."""

    rate: float = 0.5


def missing_rules(place: str, types: tuple[type, ...]) -> list[str]:
    """The names of the ``types`` that ``place`` has no rule for (composites skipped where only leaves arrive)."""
    dispatch, leaves_only = PLACES[place]
    fallback = dispatch.dispatch(object)
    return [kind.__name__ for kind in types if dispatch.dispatch(kind) is fallback
            and not (leaves_only and issubclass(kind, Composite))]
