"""The TensorFlow/Keras backend as the runner sees it."""

import tensorflow as tf

from cnnlab_tf.device import select_device
from cnnlab_tf.engine import fit
from cnnlab_tf.export import export_onnx
from cnnlab_tf.model import build_model, count_trainable, freeze, predict_logits
from cnnlab_tf.pretrained import port_checkpoint
from cnnlab_tf.weights import get_weights, load_checkpoint, save_checkpoint, set_weights
from shared.runner import Backend

BACKEND = Backend(framework="tf", version=tf.__version__, checkpoint_name="model.keras",
                  select_device=select_device, build_model=build_model, set_weights=set_weights,
                  get_weights=get_weights, count_trainable=count_trainable, fit=fit, predict_logits=predict_logits,
                  save_checkpoint=save_checkpoint, export_onnx=export_onnx, freeze=freeze,
                  port_checkpoint=port_checkpoint, load_checkpoint=load_checkpoint)
