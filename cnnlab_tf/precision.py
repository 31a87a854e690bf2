"""``--precision`` in Keras: a dtype policy for the layers (``mixed_bfloat16`` computes in bfloat16 and keeps the
variables in float32) and ``LossScaleOptimizer`` for 16-mixed. Mirrors ``cnnlab_torch.precision``; the modes
themselves are defined in ``shared.training.precision``."""

from __future__ import annotations

from contextlib import contextmanager

import keras

from shared.training.precision import LOSS_SCALE_GROWTH, LOSS_SCALE_INITIAL, precision

_POLICIES = {"32-true": "float32", "64-true": "float64", "bf16-mixed": "mixed_bfloat16",
             "16-mixed": "mixed_float16"}


def variable_dtype(name: str) -> str:
    """The dtype of the weights, the optimizer state, the input images and the loss."""
    return precision(name).variables


@contextmanager
def dtype_policy(name: str):
    """Layers and optimizers created inside take the precision's dtypes. Keras reads the global policy (layers) and
    floatx (an optimizer's learning rate: a float32 1e-3 is 4.7e-11 off, which 64-true would see) when an object is
    created, and keeps them; the globals are restored after."""
    policy, floatx = keras.config.dtype_policy(), keras.config.floatx()
    keras.config.set_dtype_policy(_POLICIES[precision(name).name])
    keras.config.set_floatx(variable_dtype(name))
    try:
        yield
    finally:
        keras.config.set_dtype_policy(policy)
        keras.config.set_floatx(floatx)


def loss_scaler(name: str, optimizer: keras.optimizers.Optimizer) -> keras.optimizers.LossScaleOptimizer | None:
    """Dynamic loss scaling for 16-mixed around ``optimizer``, else None. A step whose gradients overflowed is
    skipped (the inner optimizer's ``iterations`` does not advance, so Adam's bias correction stays in step) and
    the scale halves, as ``torch.amp.GradScaler`` does. Build it under the model's strategy scope
    (``cnnlab_tf.engine`` does), so its scale and step counter are mirrored like the optimizer's variables."""
    if not precision(name).loss_scaling:
        return None
    scaler = keras.optimizers.LossScaleOptimizer(optimizer, initial_scale=LOSS_SCALE_INITIAL,
                                                 dynamic_growth_steps=LOSS_SCALE_GROWTH)
    scaler.build(optimizer._trainable_variables)  # its variables must exist before the compiled step first runs
    return scaler
