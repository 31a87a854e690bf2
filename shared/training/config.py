"""Training settings as data. Every optimizer hyperparameter is explicit, because the frameworks' defaults differ
(Adam epsilon is 1e-8 in PyTorch and 1e-7 in Keras) and both backends must run the same optimizer."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from shared.data.augment import Augmentation


@dataclass(frozen=True)
class TrainConfig:
    arch: str = "cifar_cnn_max"  # a name from shared.model.registry.ARCHITECTURES
    experiment: str = "digits"  # a name from shared.run.experiments.EXPERIMENTS
    epochs: int = 10  # full passes over the training split
    batch_size: int = 32  # images per optimizer step (the seed labs' value)
    lr: float = 1e-3  # Adam learning rate (the seed labs' value)
    beta1: float = 0.9  # Adam first-moment decay
    beta2: float = 0.999  # Adam second-moment decay
    eps: float = 1e-8  # Adam epsilon, PyTorch placement: added to the bias-corrected sqrt(v)
    weight_decay: float = 0.0  # L2 penalty added to the gradient, as torch.optim.Adam does
    # a name from shared.training.schedule.SCHEDULES: how the rate moves from --lr, per step
    lr_schedule: str = "constant"
    augment_padding: int = 0  # random crop from the image zero-padded by this many pixels (0: no crop)
    augment_flip: bool = False  # random horizontal flip (shared.data.augment)
    val_fraction: float = 0.2  # share of each class held out for validation
    seed: int = 0  # drives the split, the initial weights and the batch order
    precision: str = "32-true"  # a name from shared.training.precision.PRECISIONS (Lightning's names)
    compile: bool = False  # torch.compile the model (PyTorch) / XLA-compile the train step (Keras)
    # Train a frozen backbone's head on its features, computed once and cached (shared.run.feature_cache), instead of
    # running the backbone on every image every epoch; the same steps up to float rounding, only faster.
    feature_cache: bool = True
    # ONNX opset of the export (shared.formats.onnx_check: OPSET is the default, LOWEST_OPSET the lowest)
    opset: int = 18

    @property
    def augmentation(self) -> Augmentation:
        return Augmentation(self.augment_padding, self.augment_flip)

    def to_json(self) -> dict:
        return asdict(self)
