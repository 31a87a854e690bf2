"""The PyTorch backend as the runner sees it (the contract is ``shared.training.backend.Backend``)."""

import torch
import torch._dynamo  # noqa: F401  (torch.optim's first step imports it, 1 s: counted with the framework's import)

from cnnlab_torch.device import select_device
from cnnlab_torch.distributed import broadcast, current_world, finish
from cnnlab_torch.engine import fit
from cnnlab_torch.exporters import export_mobile, export_onnx
from cnnlab_torch.features import backbone_features, head_model
from cnnlab_torch.model import build_model, count_trainable, freeze, predict_logits
from cnnlab_torch.optimizer import (get_optimizer_state, load_optimizer, make_optimizer, save_optimizer,
                                    set_optimizer_state)
from cnnlab_torch.pretrained import port_checkpoint
from cnnlab_torch.summary import summary_writer
from cnnlab_torch.weights import get_weights, load_checkpoint, save_checkpoint, set_weights
from shared.formats import rundir
from shared.training.backend import Backend

BACKEND = Backend(framework="torch", version=torch.__version__, checkpoint_name=rundir.NATIVE_CHECKPOINTS["torch"],
                  optimizer_name=rundir.NATIVE_OPTIMIZERS["torch"],
                  select_device=select_device, build_model=build_model, set_weights=set_weights,
                  get_weights=get_weights, count_trainable=count_trainable, freeze=freeze,
                  make_optimizer=make_optimizer, get_optimizer_state=get_optimizer_state,
                  set_optimizer_state=set_optimizer_state, save_optimizer=save_optimizer,
                  load_optimizer=load_optimizer, fit=fit, predict_logits=predict_logits,
                  save_checkpoint=save_checkpoint, load_checkpoint=load_checkpoint, export_onnx=export_onnx,
                  mobile_format="executorch", export_mobile=export_mobile,
                  port_checkpoint=port_checkpoint, backbone_features=backbone_features, head_model=head_model,
                  summary_writer=summary_writer, current_world=current_world, broadcast=broadcast,
                  finish=finish)
