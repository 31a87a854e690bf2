"""The PyTorch backend as the runner sees it."""

import torch

from cnnlab_torch.device import select_device
from cnnlab_torch.engine import fit
from cnnlab_torch.export import export_onnx
from cnnlab_torch.model import build_model, count_trainable, freeze, predict_logits
from cnnlab_torch.pretrained import port_checkpoint
from cnnlab_torch.weights import get_weights, load_checkpoint, save_checkpoint, set_weights
from shared.runner import Backend

BACKEND = Backend(framework="torch", version=torch.__version__, checkpoint_name="model.pt",
                  select_device=select_device, build_model=build_model, set_weights=set_weights,
                  get_weights=get_weights, count_trainable=count_trainable, fit=fit, predict_logits=predict_logits,
                  save_checkpoint=save_checkpoint, export_onnx=export_onnx, freeze=freeze,
                  port_checkpoint=port_checkpoint, load_checkpoint=load_checkpoint)
