"""The TensorFlow/Keras backend as the runner sees it: ``shared.training.backend.Backend``, implemented by this
package's functions (mypy checks each against the abstract method it implements)."""

from typing import Any

import keras
import tensorflow as tf

import cnnlab_tf.device as device
import cnnlab_tf.distributed as distributed
import cnnlab_tf.engine as engine
import cnnlab_tf.features as features
import cnnlab_tf.model as model
import cnnlab_tf.optimizer as optimizer
import cnnlab_tf.pretrained as pretrained
import cnnlab_tf.event_writer as event_writer
import cnnlab_tf.weights as weights
from cnnlab_tf.exporters import EXPORTERS
from shared.formats import rundir
from shared.data.dataset import Dataset
from shared.model.specs import ModelSpec
from shared.training.backend import Backend, EpochCallback, Model, Optimizer
from shared.training.distributed import DEFAULT_PEER_TIMEOUT, World
from shared.training.precision import DEFAULT_PRECISION
from shared.training.config import TrainConfig
from shared.training.loop import BatchesCallback
from shared.util.errors import PeerLost


class KerasBackend(Backend):
    framework = "tf"
    version = tf.__version__
    checkpoint_name = rundir.NATIVE_CHECKPOINTS["tf"]
    optimizer_name = rundir.NATIVE_OPTIMIZERS["tf"]
    exporters = EXPORTERS

    train_steps = staticmethod(engine.train_steps)
    predict_logits = staticmethod(model.predict_logits)
    def __init__(self) -> None:
        self.world, self.strategy = World(), None

    def select_device(self, name: str, replicas: int = 1, peer_timeout: float = DEFAULT_PEER_TIMEOUT) -> str:
        description, self.world, self.strategy = device.select_device(name, replicas, peer_timeout)
        return description

    def build_model(self, spec: ModelSpec, precision: str = DEFAULT_PRECISION) -> keras.Model:
        return model.build_model(spec, precision, self.strategy)

    def current_world(self) -> World:
        return self.world

    def broadcast(self, value: Any) -> Any:
        return distributed.broadcast_over(self.strategy, self.world, value)

    def finish(self, stopped: bool = False) -> None:
        """Every worker waits for the others (unless this one ``stopped``), then the strategy is dropped: what rank
        0 builds afterwards (a study's best model, the export's copy) is its own; its place (``world``) stays."""
        distributed.wait_for_workers(self.strategy, self.world, stopped)
        if isinstance(self.strategy, tf.distribute.MultiWorkerMirroredStrategy):
            self.strategy = None
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

    def fit(self, model: Model, optimizer: Optimizer, train: Dataset, val: Dataset, config: TrainConfig,
            on_epoch_end: EpochCallback = lambda record: None, first_epoch: int = 1,
            on_batches: BatchesCallback | None = None) -> list[dict]:
        """``Trainer.fit``; with several workers, a collective that fails because a peer left (its socket closed:
        the chief stopped by Ctrl-C, a worker's machine gone) ends this worker as a ``PeerLost``, one line, not
        TensorFlow's traceback."""
        try:
            return super().fit(model, optimizer, train, val, config, on_epoch_end, first_epoch, on_batches)
        except (tf.errors.UnavailableError, tf.errors.CancelledError, tf.errors.AbortedError) as error:
            if not self.world.distributed:
                raise
            reason = str(error).split("Collective ops is aborted by:")[-1].strip().splitlines()[0]
            raise PeerLost(f"another worker left the run ({reason})") from None


BACKEND = KerasBackend()
