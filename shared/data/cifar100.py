"""CIFAR-100 from the official ``cifar-100-python.tar.gz``: the ``train``, ``test`` and ``meta`` pickles.

The data is read as published (pickles with byte-string keys), from the archive or from its extracted
``cifar-100-python/`` folder (torchvision and Keras keep that one), a class subset is chosen by fine-label name, and
the official train/test split is kept: the test images are the validation set, as in the seed lab.
"""

from __future__ import annotations

import difflib
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np

from shared.util.errors import DataError, UsageError
from shared.data.dataset import Dataset

URL = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
MD5 = "eb9058c3a382ffc7106e4002c42a8d85"  # published on https://www.cs.toronto.edu/~kriz/cifar.html
ARCHIVE = "cifar-100-python.tar.gz"
EXTRACTED = "cifar-100-python"  # the archive's top folder
PARTS = ("train", "test", "meta")
PIXELS = 3 * 32 * 32  # one row of ``data``: the R, G and B planes of a 32x32 image
DEFAULT_CLASSES = ("apple", "orange", "pear")  # the seed lab's fruit subset
EXPECTED = f"{ARCHIVE} (from {URL}), its extracted {EXTRACTED} folder (train, test, meta) or a folder holding either"


def keras_datasets() -> Path:
    """Keras's download cache: $KERAS_HOME/datasets, else ~/.keras/datasets."""
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras") / "datasets"


def _keras_copies(datasets: Path) -> list[Path]:
    """Where each Keras version leaves the data: tf.keras 2 keeps the archive and ``cifar-100-python/``;
    Keras 3 names the download ``<fname>_archive`` and extracts into ``<fname>/``, with fname
    ``cifar-100-python`` (3.0-3.4) or ``cifar-100-python-target`` (later)."""
    return [datasets / "cifar-100-python-target" / EXTRACTED, datasets / "cifar-100-python-target_archive",
            datasets / EXTRACTED / EXTRACTED, datasets / "cifar-100-python_archive", datasets / EXTRACTED,
            datasets / ARCHIVE]


def _is_extracted(folder: Path) -> bool:
    return all((folder / part).is_file() for part in PARTS)


def _usable(path: Path) -> bool:
    return path.is_file() or _is_extracted(path)


def locate(source: Path | None, home: Path) -> Path:
    """The archive or extracted folder to read: found in ``--data`` (``source``), else in cnnlab's cache, else in
    Keras's. The extracted folder is preferred where both are there: it needs no decompression."""
    if source is not None:
        return _in_data_flag(Path(source))
    tried = [home / ARCHIVE, *_keras_copies(keras_datasets())]
    for candidate in tried:
        if _usable(candidate):
            return candidate
    raise DataError(f"no CIFAR-100 archive at {home / ARCHIVE}, nor a Keras copy in {keras_datasets()} (looked for "
                    f"{', '.join(str(path.relative_to(keras_datasets())) for path in tried[1:])}); pass --download "
                    f"to fetch it from {URL}, or --data PATH: {EXPECTED}")


def _in_data_flag(source: Path) -> Path:
    """What ``--data`` names. Its messages never suggest --download, which only fills cnnlab's own cache."""
    if source.is_file():
        with open(source, "rb") as handle:
            if handle.read(2) == b"\x1f\x8b":  # gzip's magic number: an archive, checked when read
                return source
        raise DataError(f"--data {source} is a file, not the CIFAR-100 archive; expected {EXPECTED}")
    if not source.is_dir():
        raise DataError(f"--data {source} does not exist; expected {EXPECTED}")
    for candidate in (source, source / EXTRACTED, source / ARCHIVE):
        if _usable(candidate):
            return candidate
    for folder in (source, source / EXTRACTED):
        present = [part for part in PARTS if (folder / part).is_file()]
        if present:
            missing = ", ".join(part for part in PARTS if part not in present)
            raise DataError(f"--data {folder} lacks {missing} of the CIFAR-100 pickles; expected {EXPECTED}")
    raise DataError(f"--data {source} holds neither {ARCHIVE} nor a {EXTRACTED} folder; expected {EXPECTED}")


def _key(mapping: dict, name: str):
    """The pickles were written by Python 2: their keys are bytes when read with ``encoding="bytes"``."""
    return mapping[name.encode()] if name.encode() in mapping else mapping[name]


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _read_pickles(source: Path) -> dict[str, tuple[str, object]]:
    """Each part's unpickled content, with where it came from (for messages): from the archive or the folder.
    A damaged file can fail in tarfile, gzip, zlib or pickle, each with its own exception types: all are caught."""
    if source.is_dir():
        pickles = {}
        for part in PARTS:
            try:
                pickles[part] = (str(source / part), _unpickle(open(source / part, "rb")))
            except Exception as error:
                raise DataError(f"{source / part} cannot be read ({type(error).__name__}: {error}); it may be "
                                f"truncated: replace the folder with a fresh copy of {ARCHIVE} from {URL}") from None
        return pickles
    where, pickles = str(source), {}
    try:
        with tarfile.open(source, "r:gz") as tar:
            members = {Path(member.name).name: member for member in tar.getmembers() if member.isfile()}
            missing = [part for part in PARTS if part not in members]
            if not missing:
                for part in PARTS:
                    where = f"{source} ({members[part].name})"
                    pickles[part] = (where, _unpickle(tar.extractfile(members[part])))
    except Exception as error:
        raise DataError(f"{where} cannot be read ({type(error).__name__}: {error}); it may be truncated: delete it "
                        f"and fetch {ARCHIVE} again from {URL}") from None
    if not missing:
        return pickles
    raise DataError(f"{source} is not the CIFAR-100 python archive: it lacks {', '.join(missing)}; expected "
                    f"{ARCHIVE} from {URL}")


def _unpickle(handle) -> object:
    with handle:
        return pickle.load(handle, encoding="bytes")


def _field(pickles: dict, part: str, name: str):
    where, content = pickles[part]
    if not isinstance(content, dict) or (name.encode() not in content and name not in content):
        raise DataError(f"{where} lacks the {name!r} entry of the CIFAR-100 {part} pickle; the file is damaged or "
                        f"not from {ARCHIVE}: replace it with a fresh copy from {URL}")
    return _key(content, name)


def _images_and_labels(pickles: dict, part: str, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """A part's ``data`` (N x 3072 uint8) and ``fine_labels`` (N class indices), checked: a damaged pickle is
    reported by file, not by the reshape that fails on it."""
    where = pickles[part][0]
    data, fine = np.asarray(_field(pickles, part, "data")), np.asarray(_field(pickles, part, "fine_labels"))
    fix = f"the file is damaged: replace it with a fresh copy of {ARCHIVE} from {URL}"
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != PIXELS:
        raise DataError(f"{where}: 'data' is {' x '.join(map(str, data.shape))} {data.dtype}, expected N x {PIXELS} "
                        f"uint8 (one 32x32 RGB image a row); {fix}")
    if fine.shape != (len(data),) or fine.dtype.kind not in "iu":
        raise DataError(f"{where}: 'fine_labels' holds {fine.size} {fine.dtype} values for {len(data)} images, "
                        f"expected one class index per image; {fix}")
    if len(fine) and not 0 <= fine.min() <= fine.max() < classes:
        raise DataError(f"{where}: 'fine_labels' runs from {fine.min()} to {fine.max()}, expected 0 to "
                        f"{classes - 1}; {fix}")
    return data, fine.astype(np.int64)


def fine_label_names(source: Path) -> tuple[str, ...]:
    """The 100 class names, from the archive or the extracted folder."""
    return _names(_read_pickles(source))


def _names(pickles: dict) -> tuple[str, ...]:
    return tuple(_text(name) for name in _field(pickles, "meta", "fine_label_names"))


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


def load_cifar100(source: Path, classes: tuple[str, ...]) -> tuple[Dataset, Dataset]:
    """(train, test) restricted to ``classes``, relabelled 0..k-1 in the order given. ``source`` is the archive or
    the extracted ``cifar-100-python`` folder (``locate`` finds either)."""
    pickles = _read_pickles(Path(source))
    names = _names(pickles)
    check_class_names(classes, names)
    parts = []
    for part in ("train", "test"):
        data, fine = _images_and_labels(pickles, part, len(names))
        wanted = [names.index(name) for name in classes]
        keep = np.isin(fine, wanted)
        images = data[keep].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # rows are R, G, B planes of 32x32
        labels = np.array([wanted.index(label) for label in fine[keep]], dtype=np.int64)
        parts.append(Dataset(f"cifar100 ({', '.join(classes)})", np.ascontiguousarray(images), labels, classes))
    return parts[0], parts[1]


def fetch(archive: Path, url: str = URL) -> Path:
    """Download the official archive (unless a good copy is there), checked against its published md5."""
    from shared.util.download import DownloadError, check_digest, download

    try:
        if archive.is_file():
            check_digest(archive, "md5", MD5)
        else:
            download(url, archive, "md5", MD5)
    except DownloadError as error:
        raise UsageError(str(error)) from None
    return archive
