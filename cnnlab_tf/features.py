"""A model split at its first trainable layer, for training on cached backbone features (``shared.run.feature_cache``):
the frozen backbone's outputs, and the trainable tail as a model of its own that shares the full model's
variables. Mirrors ``cnnlab_torch.features``."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

import keras
import tensorflow as tf

from cnnlab_tf.distributed import scope
from cnnlab_tf.model import output_layer_name
from shared.model.specs import ModelSpec


def _backbone_output(model: keras.Model, spec: ModelSpec, first_trainable_layer: str):
    """The Keras tensor that the layer before ``first_trainable_layer`` outputs: where the model is cut."""
    cut = [name for name, _ in spec.layers].index(first_trainable_layer)
    return model.get_layer(output_layer_name(*spec.layers[cut - 1])).output


def backbone_features(model: keras.Model, spec: ModelSpec, first_trainable_layer: str, images: np.ndarray,
                      batch_size: int, on_batch: Callable[[int], None] = lambda count: None) -> np.ndarray:
    """The output of the layers before ``first_trainable_layer`` for NHWC images, in inference mode in the model's
    precision, batch by batch; ``on_batch(count)`` after each batch. The features come back in the variable dtype:
    64-true keeps float64, and a mixed mode's 16-bit outputs widen to float32 exactly."""
    backbone = keras.Model(model.inputs, _backbone_output(model, spec, first_trainable_layer))
    dtype = model.inputs[0].dtype
    # One graph for every batch size. Keras's predict function would trace again for the last, smaller batch, and
    # TensorFlow counts the traces of every model's predict function together: with the reports' traces of the full
    # model, a run printed two "frequent retracing" warnings.
    extract = tf.function(lambda batch: backbone(batch, training=False),
                          input_signature=[tf.TensorSpec((None, *model.inputs[0].shape[1:]), dtype)])
    chunks = []
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size]
        chunks.append(np.asarray(extract(batch.astype(dtype)), dtype))
        on_batch(len(batch))
    return np.concatenate(chunks)


def head_model(model: keras.Model, spec: ModelSpec, first_trainable_layer: str) -> keras.Model:
    """The layers from ``first_trainable_layer`` on, as a model from features to logits. It calls the full model's
    own layers, so an optimizer over the full model's variables trains it, and the full model (checkpoints, neutral
    weights, ONNX export) holds what it learned."""
    cut = _backbone_output(model, spec, first_trainable_layer)
    # Keras rebuilds the graph from an intermediate tensor on with the same layer objects (functional.py,
    # clone_graph_nodes), so a tail of residual blocks works as well as a lone Dense.
    tail = keras.Model(cut, model.outputs[0])
    # The input in the variable dtype, as the full model's: the engine casts batches and computes the loss in the
    # input's dtype, which a mixed mode's 16-bit intermediate tensor would lower.
    with scope(model.distribute_strategy):  # the head's Keras strategy is the run's, as the full model's
        features = keras.Input(cut.shape[1:], dtype=model.inputs[0].dtype, name="features")
        return keras.Model(features, tail(features), name=f"{model.name}_head")
