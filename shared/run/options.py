"""The train command's settings that are not training settings, each declared once with its flag
(``shared.util.flags``): which lab and data, how many seeds, and where the run trains and writes. The training
settings are ``shared.training.config.TrainConfig``'s; ``shared.commands.cli`` builds the parser from both."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from shared.data.cifar100 import DEFAULT_CLASSES
from shared.run.experiments import EXPERIMENTS
from shared.training.distributed import DEFAULT_PEER_TIMEOUT
from shared.util.flags import POSITIVE, POSITIVE_WHOLE, name_list, one_of, setting

DEVICES = ("auto", "cpu", "cuda")


def _defaults(field: str, data: str) -> str:
    """What the experiments reading ``data`` set ``field`` to, for a flag's help: "224", or "3 for a, 1 for b"."""
    values = {name: getattr(each, field) for name, each in EXPERIMENTS.items() if each.data == data}
    if len(set(values.values())) == 1:
        return str(next(iter(values.values())))
    return ", ".join(f"{value} for {name}" for name, value in values.items())
_WHAT, _WHERE = "what to train", "where to run and where to write"


@dataclass(frozen=True)
class RunOptions:
    experiment: str = setting("digits", "the lab to run. " + "; ".join(
        f"{name} ({experiment.epochs} epochs): {experiment.description}" for name, experiment in EXPERIMENTS.items()),
        one_of(list(EXPERIMENTS)), group=_WHAT)
    data: Path | None = setting(None, "the data: an image folder with one subfolder per class (flowers experiments) "
                                "or cifar-100-python.tar.gz (cifar100-pooling, cifar100-improved); default: under "
                                "$CNNLAB_HOME (~/.cache/cnnlab)", Path, group=_WHAT, decided_later=True)
    download: bool = setting(False, "fetch the experiment's data (and ImageNet weights) when they are not there yet",
                             group=_WHAT)
    image_size: int | None = setting(None, f"side in pixels that images are resized to (flowers experiments; "
                                     f"default: {_defaults('image_size', 'image_folder')})", POSITIVE_WHOLE,
                                     group=_WHAT, decided_later=True)
    classes: tuple[str, ...] | None = setting(None, f"comma-separated CIFAR-100 fine-label names for the cifar100 "
                                              f"experiments (default: {','.join(DEFAULT_CLASSES)})", name_list,
                                              group=_WHAT, decided_later=True)
    weights: Path | None = setting(None, "starting weights for flowers-resnet18: torchvision's resnet18-f37072fd.pth "
                                   "or a cnnlab resnet18 .npz (default: the ImageNet checkpoint, found in the cache)",
                                   Path, group=_WHAT, decided_later=True)
    repeats: int | None = setting(None, f"studies: train each arm from this many seeds (--seed, --seed + 1, ...) "
                                  f"and report the mean and std of its accuracy (default: "
                                  f"{_defaults('repeats', 'cifar100')})", POSITIVE_WHOLE, decided_later=True)
    device: str = setting("auto", "auto picks CUDA when the framework sees a GPU, else the CPU", one_of(DEVICES),
                          group=_WHERE, resumable=True)
    replicas: int = setting(1, "Keras: train on this many local devices with tf.distribute.MirroredStrategy (GPUs, "
                            "or the CPU split into logical devices), --batch-size staying the global batch. PyTorch "
                            "runs one process per device instead: torchrun --nproc_per_node N", POSITIVE_WHOLE,
                            group=_WHERE, resumable=True)
    peer_timeout: float = setting(DEFAULT_PEER_TIMEOUT, "several processes (torchrun, TF_CONFIG workers): how long "
                                  "each waits for the others to start; then it names the addresses that never "
                                  "answered and exits with status 2", POSITIVE, group=_WHERE, resumable=True,
                                  metavar="SECONDS")
    out: Path | None = setting(None, "new run directory to create; refused if it exists (default: "
                               "runs/<framework>-<experiment>-<date>-<time>)", Path, group=_WHERE, resumable=True,
                               decided_later=True)
    resume: Path | None = setting(None, "continue RUN_DIR from its last finished epoch with its own settings: in "
                                  "place, or with --out into a new directory (also a run of the other framework); "
                                  "--epochs N extends it to N epochs in all", Path, group=_WHERE, resumable=True,
                                  decided_later=True, metavar="RUN_DIR")
