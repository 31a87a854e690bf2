"""CIFAR-100 from the official ``cifar-100-python.tar.gz``: the ``train``, ``test`` and ``meta`` pickles.

The archive is read as published (pickles with byte-string keys), a class subset is chosen by fine-label name, and
the official train/test split is kept: the test images are the validation set, as in the seed lab.
"""

from __future__ import annotations

import difflib
import pickle
import tarfile
from pathlib import Path

import numpy as np

from shared.errors import UsageError
from shared.data import Dataset

URL = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
MD5 = "eb9058c3a382ffc7106e4002c42a8d85"  # published on https://www.cs.toronto.edu/~kriz/cifar.html
ARCHIVE = "cifar-100-python.tar.gz"
DEFAULT_CLASSES = ("apple", "orange", "pear")  # the seed lab's fruit subset


def _key(mapping: dict, name: str):
    """The pickles were written by Python 2: their keys are bytes when read with ``encoding="bytes"``."""
    return mapping[name.encode()] if name.encode() in mapping else mapping[name]


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _read_pickles(archive: Path) -> dict[str, dict]:
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = {Path(member.name).name: member for member in tar.getmembers() if member.isfile()}
            missing = [name for name in ("train", "test", "meta") if name not in members]
            if missing:
                raise UsageError(f"{archive} is not the CIFAR-100 python archive: it lacks {', '.join(missing)}; "
                                 f"expected {ARCHIVE} from {URL}")
            return {name: pickle.load(tar.extractfile(members[name]), encoding="bytes")
                    for name in ("train", "test", "meta")}
    except (tarfile.TarError, EOFError, OSError, pickle.UnpicklingError) as error:
        raise UsageError(f"{archive} cannot be read ({error}); it may be truncated: delete it and pass --download, "
                         f"or fetch {ARCHIVE} from {URL}") from None


def fine_label_names(archive: Path) -> tuple[str, ...]:
    return tuple(_text(name) for name in _key(_read_pickles(archive)["meta"], "fine_label_names"))


def check_class_names(requested: tuple[str, ...], valid: tuple[str, ...]) -> None:
    """Unknown names are answered with the close matches first, then every valid name."""
    for name in requested:
        if name not in valid:
            close = difflib.get_close_matches(name, valid, n=3, cutoff=0.5)
            hint = f"did you mean {', '.join(close)}? " if close else ""
            raise UsageError(f"--classes: {name!r} is not a CIFAR-100 class; {hint}the {len(valid)} classes are: "
                             f"{', '.join(close + [other for other in valid if other not in close])}")
    if len(set(requested)) != len(requested) or len(requested) < 2:
        raise UsageError(f"--classes needs at least two different class names, got {', '.join(requested)}")


def load_cifar100(archive: Path, classes: tuple[str, ...]) -> tuple[Dataset, Dataset]:
    """(train, test) restricted to ``classes``, relabelled 0..k-1 in the order given."""
    pickles = _read_pickles(archive)
    names = tuple(_text(name) for name in _key(pickles["meta"], "fine_label_names"))
    check_class_names(classes, names)
    parts = []
    for part in ("train", "test"):
        data = np.asarray(_key(pickles[part], "data"), dtype=np.uint8)
        fine = np.asarray(_key(pickles[part], "fine_labels"), dtype=np.int64)
        wanted = [names.index(name) for name in classes]
        keep = np.isin(fine, wanted)
        images = data[keep].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # rows are R, G, B planes of 32x32
        labels = np.array([wanted.index(label) for label in fine[keep]], dtype=np.int64)
        parts.append(Dataset(f"cifar100 ({', '.join(classes)})", np.ascontiguousarray(images), labels, classes))
    return parts[0], parts[1]


def fetch(archive: Path, url: str = URL) -> Path:
    """Download the official archive (unless a good copy is there), checked against its published md5."""
    from shared.download import DownloadError, check_digest, download

    try:
        if archive.is_file():
            check_digest(archive, "md5", MD5)
        else:
            download(url, archive, "md5", MD5)
    except DownloadError as error:
        raise UsageError(str(error)) from None
    return archive
