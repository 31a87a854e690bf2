"""The labs as data: which architectures an experiment trains, on what, for how long, from which weights.

``--experiment NAME`` picks one. Data preparation lives here too, once for both backends, so a run directory's
``metrics.json["data"]`` is enough to load the very same images again (``evaluate``, ``shared.commands.compare``).
"""

from __future__ import annotations

import hashlib
import sys
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from collections.abc import Callable

import numpy as np

from shared.data import cifar100, flowers
from shared.formats import rundir
from shared.util import home
from shared.util.errors import DataError, RunDirError, UsageError
from shared.util.home import cnnlab_home
from shared.data.dataset import Dataset, Split, load_digits_rgb, stratified_split
from shared.data.image_folder import list_image_folder, load_image_folder


@dataclass(frozen=True)
class Recipe:
    """How an arm trains, on top of the run's settings. The fields are ``TrainConfig``'s, so a run's metrics.json
    records them and both backends read them from the config; None leaves the run's own value (its flag's)."""

    lr_schedule: str | None = None  # shared.training.schedule.SCHEDULES
    weight_decay: float | None = None  # L2 penalty added to the gradient (torch.optim.Adam's weight_decay)
    augment_padding: int | None = None  # random crop from the zero-padded image (shared.data.augment); 0: none
    augment_flip: bool | None = None  # random horizontal flip

    def settings(self) -> dict:
        """The fields this recipe sets."""
        return {name: value for name, value in asdict(self).items() if value is not None}


@dataclass(frozen=True)
class Arm:
    """One model a study trains: its folder name in the run directory, its architecture and its recipe."""

    name: str
    arch: str
    recipe: Recipe = Recipe()


@dataclass(frozen=True)
class Experiment:
    name: str
    description: str
    archs: tuple[str, ...] | None  # None: --arch chooses
    epochs: int  # default --epochs
    image_size: int | None  # default --image-size; None: the dataset's own size
    data: str  # a name from DATA_SOURCES: "digits", "image_folder" or "cifar100"
    pretrained: bool = False  # start the backbone from ImageNet weights (shared.formats.pretrained)
    trainable: tuple[str, ...] | None = None  # parameter-name prefixes that train; None: every parameter
    arms: tuple[Arm, ...] = ()  # a study's arms; () with several archs: one arm per arch, named after it
    baseline: str | None = None  # the arm the others' gain is measured against; None: the study picks a best arm
    repeats: int = 1  # default --repeats: seeds per arm

    @property
    def takes_arch(self) -> bool:
        """--arch may replace the architecture: one model, trained from scratch on every layer."""
        return (self.archs is None or len(self.archs) == 1) and not self.pretrained and self.trainable is None

    def study_arms(self, archs: tuple[str, ...]) -> tuple[Arm, ...]:
        return self.arms or tuple(Arm(arch, arch) for arch in archs)


# The improved arm of lab 2: the lab report's network, with the standard CIFAR augmentation (torchvision's
# RandomCrop(32, padding=4) and RandomHorizontalFlip). Weight decay and a cosine schedule did not earn a place: on
# the synthetic CIFAR-format archive of the tests (kind "glyph", 100 + 30 images per class, 3 seeds, 80 epochs)
# the improved network reached 73.0 +- 4.6% validation accuracy alone, 86.3 +- 1.7% with the augmentation, 84.8 +-
# 3.6% adding weight decay 5e-4 and 64.8 +- 5.3% adding the cosine decay (it left the augmented model underfit).
# Both stay available to every run as --weight-decay and --lr-schedule.
IMPROVED_RECIPE = Recipe(augment_padding=4, augment_flip=True)

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
    # The baseline is the seed lab's own final network (AvgPool2d(4) is the line left active there), and the
    # improved network averages too, so the gain measures the new layers and recipe rather than a pooling switch.
    "cifar100-improved": Experiment("cifar100-improved", "lab 2, second task: the lab report's improved CNN "
                                    "trained with crop-and-flip augmentation, against the seed CNN, over several "
                                    "seeds", ("cifar_cnn_avg", "cifar_improved"), 30, 32, "cifar100",
                                    arms=(Arm("baseline", "cifar_cnn_avg"),
                                          Arm("improved", "cifar_improved", IMPROVED_RECIPE)),
                                    baseline="baseline", repeats=3),
}

FLOWERS_VAL_IMAGES = 1000  # the lab holds out 1000 of its 4242 images


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
    def from_json(cls, data: dict) -> DataOptions:
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
    """The training and validation sets of the experiment's data source (``DATA_SOURCES``)."""
    return DATA_SOURCES[EXPERIMENTS[options.experiment].data](options, download)


def _digits(options: DataOptions, download: bool) -> PreparedData:
    """scikit-learn's embedded digits, split here (nothing to download)."""
    return _split_in_place(load_digits_rgb(), options.val_fraction, options.seed, "scikit-learn load_digits")


def _image_folders(options: DataOptions, download: bool) -> PreparedData:
    """A folder of class folders (the flowers, fetched with --download), split here."""
    dataset, root, fingerprint = _image_folder(options, download)
    fraction = options.val_fraction
    if len(dataset.labels) >= 2 * FLOWERS_VAL_IMAGES:
        fraction = FLOWERS_VAL_IMAGES / len(dataset.labels)
    return _split_in_place(dataset, fraction, options.seed, options.source or str(root), fingerprint)


def _cifar100(options: DataOptions, download: bool) -> PreparedData:
    """CIFAR-100's official train and test sets, for the chosen classes."""
    if download and not options.source:
        cifar100.fetch(cnnlab_home() / cifar100.ARCHIVE)
    source = cifar100.locate(Path(options.source) if options.source else None, cnnlab_home())
    train, test = cifar100.load_cifar100(source, options.classes or cifar100.DEFAULT_CLASSES)
    split = {"seed": options.seed, "official": "CIFAR-100 train / test", "train_images": len(train.labels),
             "val_images": len(test.labels)}
    return PreparedData(train, test, split, str(source))


# Experiment.data -> how its training and validation sets are prepared
DATA_SOURCES: dict[str, Callable[[DataOptions, bool], PreparedData]] = {
    "digits": _digits,
    "image_folder": _image_folders,
    "cifar100": _cifar100,
}


def _image_folder(options: DataOptions, download: bool = False) -> tuple[Dataset, Path, str]:
    """The whole decoded folder (not yet split), the folder it was read from, and that folder's fingerprint."""
    if options.source:
        root = Path(options.source)
        if root.is_file():
            if root.suffix.lower() != ".zip" and not zipfile.is_zipfile(root):
                raise DataError(f"--data {root} is a file, not a folder of class subfolders or a .zip")
            root = _unpacked(root)
    else:
        root = flowers.default_folder(cnnlab_home())
        if download:
            flowers.fetch(root)
        elif not root.exists():
            raise UsageError(f"no flowers data at {root}: pass --download to fetch the lab's archive "
                             f"({flowers.URL}), or --data FOLDER with one subfolder of images per class")
    # every image-folder experiment has a default --image-size (EXPERIMENTS), so a run's options always hold one
    assert options.image_size is not None
    listing = list_image_folder(root)
    dataset = load_image_folder(root, options.image_size, cnnlab_home() / home.DECODED,
                                name=f"images in {options.source or root}", listing=listing)
    return dataset, root, listing.fingerprint(options.image_size)


def _unpacked(archive: Path) -> Path:
    """A zip passed as --data, unpacked once into cnnlab's cache. The folder is keyed by the zip's name, size and
    date, so a replaced zip is unpacked afresh and never mixed with the old one's files."""
    status = archive.stat()
    key = hashlib.sha256(f"{archive.name}|{status.st_size}|{status.st_mtime_ns}".encode()).hexdigest()[:12]
    folder = cnnlab_home() / home.UNPACKED / f"{archive.stem}-{key}"
    if not folder.is_dir():
        folder.parent.mkdir(parents=True, exist_ok=True)
        print(f"unpacking {archive} to {folder}", file=sys.stderr)
        flowers.unpack(archive, folder)
    return folder


def _split_in_place(dataset: Dataset, val_fraction: float, seed: int, source: str,
                    fingerprint: str | None = None) -> PreparedData:
    split: Split = stratified_split(dataset.labels, val_fraction, seed, dataset.class_names)
    record = split.to_json()
    if dataset.files:  # by path too, so evaluate finds the same images in a folder that has changed since
        record["val_files"] = [dataset.files[index] for index in split.val]
    if fingerprint:
        record["fingerprint"] = fingerprint
    return PreparedData(dataset.subset(split.train), dataset.subset(split.val), record, source)


def recorded_validation(metrics: dict, split: dict) -> tuple[np.ndarray, np.ndarray, str]:
    """The validation images and labels a finished run was measured on, and a note ("" if none) on how its data
    changed since. ``split`` is the run's split.json. Where it names the validation files, exactly those are
    loaded, in the recorded order, so images added to the folder since cannot move into the validation set. Data
    that is gone is a ``DataError`` that says where the run found it."""
    try:
        options = DataOptions.from_json(metrics["data"])
    except (KeyError, TypeError, ValueError) as error:
        raise RunDirError(f"the run's {rundir.METRICS}: field \"data\" is not the data options a run records "
                          f"({type(error).__name__}: {error}); restore the file from a copy, or train the run "
                          f"again") from None
    try:
        return _recorded_validation(options, metrics, split)
    except UsageError as error:
        # The data readers speak to train's --data flag; evaluate, export and compare have none: they reload the
        # data from where the run recorded it, so that is where it must be put back.
        reason = str(error).split("; ")[0].removeprefix("--data ")
        where = options.source or f"the default location under $CNNLAB_HOME ({cnnlab_home()})"
        raise DataError(f"the run's validation data cannot be loaded from {where}, where it trained ({reason}); put "
                        f"the data back there (the run recorded it in {rundir.METRICS}'s \"data\")") from None


def _recorded_validation(options: DataOptions, metrics: dict, split: dict) -> tuple[np.ndarray, np.ndarray, str]:
    if not split.get("val_files"):
        prepared = prepare_data(options)
        return prepared.val.images, prepared.val.labels, ""
    dataset, root, fingerprint = _image_folder(options)
    position = {file: index for index, file in enumerate(dataset.files)}
    present = [file for file in split["val_files"] if file in position]
    if not present:
        raise DataError(f"none of the {len(split['val_files'])} validation images recorded in split.json is in "
                        f"{root} any more; put the run's data back to evaluate it")
    chosen = dataset.subset(np.array([position[file] for file in present]))
    # Labels are indices into the classes the run trained on: a class folder added since shifts the folder's own.
    trained = list(options.classes or metrics.get("classes") or dataset.class_names)
    labels = np.array([trained.index(dataset.class_names[label]) for label in chosen.labels], dtype=np.int64)
    note = ""
    if fingerprint != split.get("fingerprint"):
        before = len(split["train"]) + len(split["val"])
        gone = len(split["val_files"]) - len(present)
        note = (f"the data folder changed since training ({before} images then, {len(dataset.labels)} now; "
                f"{gone} recorded validation images gone); evaluating on the {len(present)} recorded validation "
                f"images still present")
    return chosen.images, labels, note
