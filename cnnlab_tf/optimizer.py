"""The optimizer of the Keras backend: Adam with PyTorch's update rule, and its state in the native and neutral
formats. Mirrors ``cnnlab_torch.optimizer``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import keras
import tensorflow as tf
from keras import ops

from cnnlab_tf.distributed import scope
from cnnlab_tf.precision import dtype_policy
from cnnlab_tf.weights import canonical_variables
from shared.formats.readable import reading
from shared.util.atomic import atomic_path
from shared.training.config import TrainConfig
from shared.util.errors import WeightsError
from shared.formats.optimizer_state import OptimizerState
from shared.model.specs import ModelSpec


@keras.saving.register_keras_serializable(package="cnnlab")
class TorchAdam(keras.optimizers.Adam):
    """Adam with ``torch.optim.Adam``'s update rule.

    Keras adds epsilon to the *uncorrected* sqrt(v), PyTorch to the bias-corrected one, so equal hyperparameters
    still give different steps: after one epoch on the digits, weights differed by 2e-3 and 0.8% of predictions
    flipped. This writes PyTorch's formula out:
        m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
        p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
    ``l2`` is torch.optim.Adam's weight_decay (added to the gradient), not Keras's decoupled ``weight_decay``.
    """

    def __init__(self, learning_rate, beta_1, beta_2, epsilon, l2=0.0, **kwargs):
        super().__init__(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, **kwargs)
        self.l2 = l2

    def update_step(self, gradient, variable, learning_rate):
        # Step by step as torch.optim.Adam does it, down to where it rounds: the bias corrections and the step size
        # are float64 scalars (Python floats in PyTorch) rounded once to the variable's dtype. Note ops.cast(0.999,
        # dtype) would first make a float32 0.99900001, and 1 - 0.999**t in float32 is off by 1.3e-5 at t = 1.
        dtype = variable.dtype
        step = ops.cast(self.iterations + 1, "float64")
        bias_correction1 = 1.0 - ops.power(ops.convert_to_tensor(self.beta_1, "float64"), step)
        bias_correction2 = 1.0 - ops.power(ops.convert_to_tensor(self.beta_2, "float64"), step)
        step_size = ops.cast(ops.cast(learning_rate, "float64") / bias_correction1, dtype)
        bias_correction2_sqrt = ops.cast(ops.sqrt(bias_correction2), dtype)
        gradient = ops.cast(gradient, dtype)
        if self.l2:
            gradient = gradient + ops.convert_to_tensor(self.l2, dtype) * variable
        m = self._momentums[self._get_variable_index(variable)]
        v = self._velocities[self._get_variable_index(variable)]
        # m.lerp_(g, 1 - b1) and v.mul_(b2).addcmul_(g, g, value=1 - b2)
        self.assign(m, m + ops.convert_to_tensor(1.0 - self.beta_1, dtype) * (gradient - m))
        self.assign(v, v * ops.convert_to_tensor(self.beta_2, dtype)
                    + ops.convert_to_tensor(1.0 - self.beta_2, dtype) * ops.square(gradient))
        denominator = ops.sqrt(v) / bias_correction2_sqrt + ops.convert_to_tensor(self.epsilon, dtype)
        self.assign_sub(variable, step_size * (m / denominator))

    def get_config(self):
        return {**super().get_config(), "l2": self.l2}


def make_optimizer(model: keras.Model, config: TrainConfig) -> keras.optimizers.Optimizer:
    """Adam with every hyperparameter from the config and PyTorch's update rule, over the trainable parameters."""
    # 64-true: a float64 learning rate, as PyTorch's is a Python float; several replicas: mirrored slots
    with dtype_policy(config.precision), scope(model.distribute_strategy):
        optimizer = TorchAdam(learning_rate=config.lr, beta_1=config.beta1, beta_2=config.beta2,
                              epsilon=config.eps, l2=config.weight_decay)
        optimizer.build(model.trainable_variables)  # its slots must exist before the compiled step first runs
    return optimizer


def set_learning_rate(optimizer: keras.optimizers.Optimizer, lr: tf.Tensor) -> None:
    """The schedule's rate for the next step (``shared.training.schedule``), assigned to the optimizer's rate
    variable; a float64 tensor, so a traced step takes each step's rate as an argument rather than retracing for
    it."""
    optimizer.learning_rate.assign(ops.cast(lr, optimizer.learning_rate.dtype))


def _trainable(model: keras.Model, spec: ModelSpec, optimizer: keras.optimizers.Optimizer) -> dict:
    """Canonical name -> (variable entry, slot index) for every parameter the optimizer updates."""
    return {name: (entry, optimizer._get_variable_index(entry.variable))
            for name, entry in canonical_variables(model, spec).items()
            if optimizer._var_key(entry.variable) in optimizer._trainable_variables_indices}


def get_optimizer_state(model: keras.Model, spec: ModelSpec, optimizer: TorchAdam) -> OptimizerState:
    """Adam's step and moments under canonical names, in the canonical layout."""
    moments = {name: (entry.to_canonical(np.asarray(optimizer._momentums[index].numpy())),
                      entry.to_canonical(np.asarray(optimizer._velocities[index].numpy())))
               for name, (entry, index) in _trainable(model, spec, optimizer).items()}
    return OptimizerState(int(optimizer.iterations.numpy()), moments)


def set_optimizer_state(model: keras.Model, spec: ModelSpec, optimizer: TorchAdam, state: OptimizerState) -> None:
    for name, (entry, index) in _trainable(model, spec, optimizer).items():
        for slots, value in zip((optimizer._momentums, optimizer._velocities), state.moments[name]):
            slots[index].assign(entry.from_canonical(np.asarray(value)).astype(slots[index].dtype))
    optimizer.iterations.assign(state.step)


def save_optimizer(optimizer: TorchAdam, path: Path) -> None:
    """The native state: the optimizer's own variables (``save_own_variables``, as a ``.keras`` archive stores
    them), in an ``.npz``."""
    store: dict[str, np.ndarray] = {}  # "0", "1"...: each variable's value
    optimizer.save_own_variables(store)
    with atomic_path(path) as part, open(part, "wb") as handle:
        np.savez(handle, **store)  # type: ignore[arg-type]  # numpy's stub: **kwds as if one were allow_pickle


def load_optimizer(optimizer: TorchAdam, path: Path) -> None:
    with reading(path, "a Keras optimizer state (an .npz saved by cnnlab_tf)"), \
            np.load(path, allow_pickle=False) as archive:
        store = {name: archive[name] for name in archive.files}
    if len(store) != len(optimizer.variables):  # Keras would only warn and skip the load
        raise WeightsError(f"{path} holds {len(store)} optimizer variables, this model's optimizer has "
                           f"{len(optimizer.variables)}; resume from the neutral optimizer.npz instead")
    optimizer.load_own_variables(store)
