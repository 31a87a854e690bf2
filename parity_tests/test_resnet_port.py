"""torchvision's ResNet-18 checkpoint, ported through the neutral weights format into Keras, computes what
torchvision's own ``resnet18`` computes: the flowers-resnet18 experiment's two backends start from one checkpoint."""

import numpy as np
import pytest
import tensorflow as tf
import torch
import torchvision

import cnnlab_tf.model
import cnnlab_tf.weights
from cnnlab_torch.pretrained import port_checkpoint
from parity_tests.pairs import assert_agree, random_images
from shared.model.registry import IMAGENET_MEAN, IMAGENET_STD, build_spec
from tests.support.helpers import write_torchvision_checkpoint
from shared.formats.weights_io import load_weights


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return write_torchvision_checkpoint(tmp_path_factory.mktemp("resnet") / "resnet18-test.pth", seed=7)


def torchvision_logits(checkpoint, images: np.ndarray) -> np.ndarray:
    """The reference: torchvision's model with its own preprocessing (0-1 scaling, ImageNet mean/std, NCHW)."""
    model = torchvision.models.resnet18()
    model.load_state_dict(torch.load(checkpoint, weights_only=True))
    model.eval()
    x = (torch.from_numpy(images) / 255.0 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    with torch.no_grad():
        return model(x.permute(0, 3, 1, 2)).numpy()


@pytest.mark.parametrize("image_size", [64, 224])
def test_keras_with_ported_weights_matches_torchvision(checkpoint, tmp_path, image_size):
    neutral = tmp_path / "resnet18.npz"
    port_checkpoint(checkpoint, neutral)
    spec = build_spec("resnet18", 1000, image_size)
    keras_model = cnnlab_tf.model.build_model(spec)
    cnnlab_tf.weights.set_weights(keras_model, spec, load_weights(neutral, spec))
    images = random_images(spec, 4, seed=image_size)
    keras_logits = keras_model(tf.constant(images), training=False).numpy()
    # The issue asks for 1e-4; identical weights in float32 meet the table's stricter same_weights bound.
    assert_agree(keras_logits, torchvision_logits(checkpoint, images), "same_weights",
                 f"Keras (ported) vs torchvision resnet18 at {image_size}x{image_size}")
