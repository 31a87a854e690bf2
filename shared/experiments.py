"""The labs as data: which architectures an experiment trains, on what, for how long, from which weights.

``--experiment NAME`` picks one. Data preparation lives here too, once for both backends, so a run directory's
``metrics.json["data"]`` is enough to load the very same images again (``evaluate``, ``shared.compare``).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from shared import cifar100, flowers
from shared.errors import UsageError
from shared.data import DATASETS, Dataset, Split, stratified_split
from shared.image_folder import load_image_folder


@dataclass(frozen=True)
class Experiment:
    name: str
    description: str
    archs: tuple[str, ...] | None  # None: --arch chooses
    epochs: int  # default --epochs
    image_size: int | None  # default --image-size; None: the dataset's own size
    data: str  # "digits", "image_folder" or "cifar100"
    pretrained: bool = False  # start the backbone from ImageNet weights (shared.pretrained)
    trainable: tuple[str, ...] | None = None  # parameter-name prefixes that train; None: every parameter


EXPERIMENTS = {
    "digits": Experiment("digits", "any --arch on scikit-learn's embedded digits (no download)", None, 10, None,
                         "digits"),
    "flowers": Experiment("flowers", "lab 1: the baseline CNN trained from scratch on the 5 flower classes",
                          ("flowers_baseline",), 10, 224, "image_folder"),
    "flowers-resnet18": Experiment("flowers-resnet18", "lab 1: ResNet-18 from ImageNet weights, frozen backbone, "
                                   "a new head trains", ("resnet18",), 5, 224, "image_folder", pretrained=True,
                                   trainable=("fc.",)),
    "cifar100-pooling": Experiment("cifar100-pooling", "lab 2: the CIFAR-100 CNN with stride, max and average "
                                   "pooling on a class subset", ("cifar_cnn_stride", "cifar_cnn_max",
                                                                 "cifar_cnn_avg"), 30, 32, "cifar100"),
}

FLOWERS_VAL_IMAGES = 1000  # the lab holds out 1000 of its 4242 images


def cnnlab_home() -> Path:
    """Where downloads, ported weights and decoded-image caches live: $CNNLAB_HOME, else ~/.cache/cnnlab."""
    return Path(os.environ.get("CNNLAB_HOME") or Path.home() / ".cache" / "cnnlab")


@dataclass(frozen=True)
class DataOptions:
    """What identifies the data of a run; stored in metrics.json so the data can be loaded again."""

    experiment: str
    source: str | None  # --data: a folder or an archive; None: the default location under cnnlab_home()
    image_size: int | None
    classes: tuple[str, ...] | None
    val_fraction: float
    seed: int

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "DataOptions":
        classes = tuple(data["classes"]) if data.get("classes") else None
        return cls(data["experiment"], data.get("source"), data.get("image_size"), classes, data["val_fraction"],
                   data["seed"])


@dataclass(frozen=True)
class PreparedData:
    train: Dataset
    val: Dataset
    split: dict  # written to split.json
    source: str  # where the images came from, for the log and the report


def prepare_data(options: DataOptions, download: bool = False) -> PreparedData:
    experiment = EXPERIMENTS[options.experiment]
    if experiment.data == "digits":
        return _split_in_place(DATASETS["digits"](), options.val_fraction, options.seed, "scikit-learn load_digits")
    if experiment.data == "image_folder":
        root = Path(options.source) if options.source else flowers.default_folder(cnnlab_home())
        if download and not options.source:
            flowers.fetch(root)
        elif not root.exists() and not options.source:
            raise UsageError(f"no flowers data at {root}: pass --download to fetch the lab's archive "
                             f"({flowers.URL}), or --data FOLDER with one subfolder of images per class")
        dataset = load_image_folder(root, options.image_size, cnnlab_home() / "decoded", name=f"images in {root}")
        fraction = options.val_fraction
        if len(dataset.labels) >= 2 * FLOWERS_VAL_IMAGES:
            fraction = FLOWERS_VAL_IMAGES / len(dataset.labels)
        return _split_in_place(dataset, fraction, options.seed, str(root))
    archive = Path(options.source) if options.source else cnnlab_home() / cifar100.ARCHIVE
    if download and not options.source:
        cifar100.fetch(archive)
    elif not archive.is_file():
        raise UsageError(f"no CIFAR-100 archive at {archive}: pass --download to fetch it from {cifar100.URL}, "
                         f"or --data PATH/{cifar100.ARCHIVE}")
    train, test = cifar100.load_cifar100(archive, options.classes or cifar100.DEFAULT_CLASSES)
    split = {"seed": options.seed, "official": "CIFAR-100 train / test", "train_images": len(train.labels),
             "val_images": len(test.labels)}
    return PreparedData(train, test, split, str(archive))


def _split_in_place(dataset: Dataset, val_fraction: float, seed: int, source: str) -> PreparedData:
    split: Split = stratified_split(dataset.labels, val_fraction, seed)
    return PreparedData(dataset.subset(split.train), dataset.subset(split.val), split.to_json(), source)


def validation_images(metrics: dict) -> tuple[np.ndarray, np.ndarray]:
    """The validation images and labels of a finished run, loaded again from its recorded data options."""
    prepared = prepare_data(DataOptions.from_json(metrics["data"]))
    return prepared.val.images, prepared.val.labels
