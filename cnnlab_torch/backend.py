"""The PyTorch backend as the runner sees it: ``shared.training.backend.Backend``, implemented by this package's
functions (mypy checks each against the abstract method it implements). The instance holds what ``select_device``
chose: the device its models are built on and this process's place among several."""

import torch
import torch._dynamo  # noqa: F401  (torch.optim's first step imports it, 1 s: counted with the framework's import)

import cnnlab_torch.device as device
import cnnlab_torch.distributed as distributed
import cnnlab_torch.engine as engine
import cnnlab_torch.features as features
import cnnlab_torch.model as model
import cnnlab_torch.optimizer as optimizer
import cnnlab_torch.pretrained as pretrained
import cnnlab_torch.event_writer as event_writer
import cnnlab_torch.weights as weights
from cnnlab_torch.exporters import EXPORTERS
from shared.formats import rundir
from shared.model.specs import ModelSpec
from shared.training.backend import Backend
from shared.training.distributed import DEFAULT_PEER_TIMEOUT, World
from shared.training.precision import DEFAULT_PRECISION


class TorchBackend(Backend):
    framework = "torch"
    version = torch.__version__
    checkpoint_name = rundir.NATIVE_CHECKPOINTS["torch"]
    optimizer_name = rundir.NATIVE_OPTIMIZERS["torch"]
    exporters = EXPORTERS

    train_steps = staticmethod(engine.train_steps)
    predict_logits = staticmethod(model.predict_logits)
    def __init__(self) -> None:
        self.device, self.world = device.CPU, World()

    def select_device(self, name: str, replicas: int = 1, peer_timeout: float = DEFAULT_PEER_TIMEOUT) -> str:
        description, self.device, self.world = device.select_device(name, replicas, peer_timeout)
        return description

    def build_model(self, spec: ModelSpec, precision: str = DEFAULT_PRECISION) -> torch.nn.Module:
        return model.build_model(spec, precision, self.device)

    def current_world(self) -> World:
        return self.world

    set_weights = staticmethod(weights.set_weights)
    get_weights = staticmethod(weights.get_weights)
    count_trainable = staticmethod(model.count_trainable)
    freeze = staticmethod(model.freeze)
    make_optimizer = staticmethod(optimizer.make_optimizer)
    get_optimizer_state = staticmethod(optimizer.get_optimizer_state)
    set_optimizer_state = staticmethod(optimizer.set_optimizer_state)
    save_optimizer = staticmethod(optimizer.save_optimizer)
    load_optimizer = staticmethod(optimizer.load_optimizer)
    save_checkpoint = staticmethod(weights.save_checkpoint)
    load_checkpoint = staticmethod(weights.load_checkpoint)
    port_checkpoint = staticmethod(pretrained.port_checkpoint)
    backbone_features = staticmethod(features.backbone_features)
    head_model = staticmethod(features.head_model)
    event_writer = staticmethod(event_writer.event_writer)
    broadcast = staticmethod(distributed.broadcast)
    finish = staticmethod(distributed.finish)


BACKEND = TorchBackend()
