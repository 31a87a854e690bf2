"""A spec built in both frameworks with identical weights, and the one comparison every parity test uses."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf
import torch

import cnnlab_tf.engine
import cnnlab_tf.exporters
import cnnlab_tf.model
import cnnlab_tf.optimizer
import cnnlab_tf.precision
import cnnlab_tf.weights
import cnnlab_torch.engine
import cnnlab_torch.exporters
import cnnlab_torch.model
import cnnlab_torch.optimizer
import cnnlab_torch.weights
from shared.training.config import TrainConfig
from shared.model.init import initial_weights
from shared.formats.onnx_check import OPSET, onnx_logits
from shared.model.registry import build_spec
from shared.model.specs import ModelSpec
from shared.formats.tolerances import compare
from tests.support.helpers import small_image_size

PARITY_CLASSES = 5
STEP_BATCH, STEPS = 8, 3  # train_both: a few steps on one small batch


def parity_weights(spec: ModelSpec, seed: int = 0) -> dict[str, np.ndarray]:
    """The shared initial weights with BatchNorm made non-trivial: a fresh layer (mean 0, variance 1, gamma 1,
    beta 0) is the identity in inference mode, which would hide a wrong mapping of its four arrays.

    The values stay near what a trained network holds (each array within 25% of its fresh value, offsets within
    0.1), so activations keep their trained scale: float32 rounding is relative, and exaggerated statistics that
    blow ResNet-18's activations up to ~200 would turn 1e-6 relative rounding into 3e-4 absolute."""
    weights = initial_weights(spec, seed)
    rng = np.random.default_rng(seed + 1)
    for name, value in weights.items():
        if name.endswith(("running_mean", "bn1.bias", "bn2.bias", "downsample.1.bias")):
            weights[name] = rng.uniform(-0.1, 0.1, value.shape).astype(np.float32)
        elif name.endswith(("running_var", "bn1.weight", "bn2.weight", "downsample.1.weight")):
            weights[name] = rng.uniform(0.8, 1.25, value.shape).astype(np.float32)
    return weights


def random_images(spec: ModelSpec, batch: int, seed: int) -> np.ndarray:
    """Fresh NHWC 0-255 float32 images."""
    return np.random.default_rng(seed).uniform(0, 255, (batch, spec.image_size, spec.image_size, 3)).astype(
        np.float32)


def assert_agree(actual: np.ndarray, expected: np.ndarray, kind: str, what: str, precision: str = "32-true") -> float:
    """The parity check: max |difference| within the ``kind`` row of the tolerance table at ``precision``."""
    within, difference, bound = compare(actual, expected, kind, precision)
    assert within, f"{what}: max |difference| {difference:.3g} exceeds the {kind!r} {precision} bound {bound:.3g}"
    return difference


def assert_opencv_agrees(path: Path, images: np.ndarray, what: str) -> float:
    """OpenCV's DNN module, a second ONNX runtime, computes the file's logits as onnxruntime does."""
    import cv2

    network = cv2.dnn.readNetFromONNX(str(path))
    network.setInput(images)
    return assert_agree(network.forward(), onnx_logits(path, images), "onnx_runtimes", f"{what}, OpenCV vs onnxruntime")


def assert_layers_agree(torch_layers: dict, keras_layers: dict, kind: str, what: str) -> None:
    """Compare layer by layer, in order, so a failure names the first layer that diverges."""
    for name, torch_value in torch_layers.items():
        assert_agree(keras_layers[name], torch_value, kind, f"{what}, layer {name!r}")


@dataclass
class ModelPair:
    spec: ModelSpec
    torch_model: object
    keras_model: object

    def layer_outputs(self, images: np.ndarray) -> tuple[dict, dict]:
        return (cnnlab_torch.model.layer_outputs(self.torch_model, self.spec, images),
                cnnlab_tf.model.layer_outputs(self.keras_model, self.spec, images))

    def logits(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (cnnlab_torch.model.predict_logits(self.torch_model, images, len(images)),
                cnnlab_tf.model.predict_logits(self.keras_model, images, len(images)))

    def export(self, directory: Path, opset: int = OPSET) -> tuple[Path, Path]:
        """(PyTorch ONNX path, Keras ONNX path), each self-checked against its native model by ``export_onnx``."""
        check = random_images(self.spec, 4, seed=99)
        torch_path, keras_path = directory / "torch.onnx", directory / "keras.onnx"
        cnnlab_torch.exporters.export_onnx(self.torch_model, self.spec, torch_path, check, opset=opset)
        cnnlab_tf.exporters.export_onnx(self.keras_model, self.spec, keras_path, check, opset=opset)
        return torch_path, keras_path


def build_pair(arch: str, image_size: int | None = None) -> ModelPair:
    spec = build_spec(arch, PARITY_CLASSES, image_size or small_image_size(arch))
    weights = parity_weights(spec)
    torch_model = cnnlab_torch.model.build_model(spec)
    cnnlab_torch.weights.set_weights(torch_model, spec, weights)
    keras_model = cnnlab_tf.model.build_model(spec)
    cnnlab_tf.weights.set_weights(keras_model, spec, weights)
    return ModelPair(spec, torch_model, keras_model)


def train_both(arch: str, keras_optimizer=cnnlab_tf.optimizer.make_optimizer) -> tuple[dict, dict, dict]:
    """(weights before, PyTorch weights after, Keras weights after) ``STEPS`` Adam steps on one batch, float64."""
    spec = build_spec(arch, PARITY_CLASSES, small_image_size(arch))
    before = {name: value.astype(np.float64) for name, value in parity_weights(spec).items()}
    images = random_images(spec, STEP_BATCH, seed=5).astype(np.float64)
    labels = np.random.default_rng(5).integers(0, spec.classes, STEP_BATCH)
    config = TrainConfig(arch=arch, precision="64-true")

    torch_model = cnnlab_torch.model.build_model(spec, config.precision)
    cnnlab_torch.weights.set_weights(torch_model, spec, before)
    torch_optimizer = cnnlab_torch.optimizer.make_optimizer(torch_model, config)
    with cnnlab_tf.precision.dtype_policy(config.precision):  # also for the Keras optimizers the tests plant
        keras_model = cnnlab_tf.model.build_model(spec, config.precision)
        cnnlab_tf.weights.set_weights(keras_model, spec, before)
        optimizer = keras_optimizer(keras_model, config)
    for _ in range(STEPS):
        cnnlab_torch.engine.train_step(torch_model, torch_optimizer, torch.from_numpy(images),
                                       torch.from_numpy(labels))
        cnnlab_tf.engine.train_step(keras_model, optimizer, tf.constant(images), tf.constant(labels))
    return (before, cnnlab_torch.weights.get_weights(torch_model, spec),
            cnnlab_tf.weights.get_weights(keras_model, spec))
