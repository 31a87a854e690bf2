"""The precision modes of ``--precision``, with PyTorch Lightning's names, as data. Each backend translates a mode
into its own mechanism (``cnnlab_torch.precision``: a model dtype, ``torch.autocast`` and ``GradScaler``;
``cnnlab_tf.precision``: a Keras dtype policy and ``LossScaleOptimizer``); what a mode means is stated once, here.

The mixed modes keep the variables, the optimizer state, the normalisation of the input pixels and the loss in
float32 and compute the convolutions and matrix products in 16 bits. BatchNorm statistics are computed in float32
in both frameworks. float16's narrow range needs loss scaling; bfloat16 has float32's range and does not.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.util.errors import UsageError


@dataclass(frozen=True)
class Precision:
    name: str  # Lightning's name, the value of --precision
    variables: str  # dtype of the weights, the optimizer state, the input normalisation and the loss
    compute: str  # dtype of convolutions and matrix products
    loss_scaling: bool  # scale the loss so float16 gradients do not underflow; skip steps whose gradients overflow
    description: str

    @property
    def mixed(self) -> bool:
        return self.compute != self.variables


PRECISIONS = {
    "32-true": Precision("32-true", "float32", "float32", False,
                         "float32 throughout, TF32 off on GPUs (the default)"),
    "64-true": Precision("64-true", "float64", "float64", False,
                         "float64 throughout: slow, for proving that the frameworks compute the same thing"),
    "bf16-mixed": Precision("bf16-mixed", "float32", "bfloat16", False,
                            "bfloat16 convolutions and matmuls, float32 weights and loss"),
    "16-mixed": Precision("16-mixed", "float32", "float16", True,
                          "float16 convolutions and matmuls with dynamic loss scaling, float32 weights and loss"),
}
DEFAULT_PRECISION = "32-true"

# Dynamic loss scaling (16-mixed), the same in both frameworks: start at 2**16 (GradScaler's default; Keras's
# LossScaleOptimizer would start at 2**15), halve the scale and skip the step on an overflow, double it after this
# many steps without one (both frameworks' default).
LOSS_SCALE_INITIAL = 2.0**16
LOSS_SCALE_GROWTH = 2000


def precision(name: str) -> Precision:
    if name not in PRECISIONS:
        raise UsageError(f"--precision {name!r} is not one of: {', '.join(PRECISIONS)}")
    return PRECISIONS[name]
