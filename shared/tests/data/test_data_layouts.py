"""Every layout a lab's data arrives in: CIFAR-100 as the tarball, its extracted folder, torchvision's root or
Keras's download cache; the flowers as their zip; and a run's validation images found again by path after the
folder changed."""

import os
import tarfile
import zipfile

import numpy as np
import pytest

from shared.data import cifar100, flowers
from shared.data.cifar100 import ARCHIVE, locate
from shared.run.experiments import DataOptions, prepare_data, recorded_validation
from tests.support.helpers import write_cifar100_archive, write_image_folder


# cnnlab's and Keras's caches inside tmp_path (the ``homes`` fixture, shared/tests/conftest.py), empty.
pytestmark = pytest.mark.usefixtures("homes")


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    return write_cifar100_archive(tmp_path_factory.mktemp("cifar") / ARCHIVE, 2, 1)


def extract(archive, into):
    """What torchvision and Keras leave: ``into/cifar-100-python/{train,test,meta}``."""
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into / "cifar-100-python"


def cifar_options(source=None):
    return DataOptions("cifar100-pooling", None if source is None else str(source), 32, None, 0.2, 0)


def same_cifar_data(prepared, archive):
    train, test = cifar100.load_cifar100(archive, cifar100.DEFAULT_CLASSES)
    return (np.array_equal(prepared.train.images, train.images) and np.array_equal(prepared.val.labels, test.labels)
            and np.array_equal(prepared.val.images, test.images))


@pytest.mark.parametrize("layout", ["tarball", "folder-holding-tarball", "extracted-folder", "torchvision-root"])
def test_cifar_data_flag_takes_every_layout(layout, archive, tmp_path):
    given = {"tarball": lambda: archive,
             "folder-holding-tarball": lambda: archive.parent,
             "extracted-folder": lambda: extract(archive, tmp_path / "root"),
             "torchvision-root": lambda: extract(archive, tmp_path / "root").parent}[layout]()
    assert same_cifar_data(prepare_data(cifar_options(given)), archive), f"--data {given} read other pixels"


@pytest.mark.parametrize("copy", [
    "cifar-100-python.tar.gz",  # tf.keras 2: the archive ...
    "cifar-100-python",  # ... and its extraction beside it
    "cifar-100-python-target/cifar-100-python",  # Keras 3: extracted into a folder named by fname
    "cifar-100-python-target_archive",  # Keras 3: the download, renamed
])
def test_without_data_flag_keras_cache_is_used(copy, archive, tmp_path):
    datasets = tmp_path / "user" / ".keras" / "datasets"
    if copy.endswith(("tar.gz", "_archive")):
        (datasets / copy).parent.mkdir(parents=True)
        (datasets / copy).write_bytes(archive.read_bytes())
    else:
        extract(archive, (datasets / copy).parent)
    assert locate(None, tmp_path / "cnnlab-home") == datasets / copy
    assert same_cifar_data(prepare_data(cifar_options()), archive)


def test_keras_home_replaces_dot_keras_and_cnnlab_cache_comes_first(archive, tmp_path, monkeypatch, homes):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    extract(archive, tmp_path / "keras" / "datasets")
    extract(archive, tmp_path / "user" / ".keras" / "datasets")
    assert locate(None, homes) == tmp_path / "keras" / "datasets" / "cifar-100-python"
    homes.mkdir()
    (homes / ARCHIVE).write_bytes(archive.read_bytes())
    assert locate(None, homes) == homes / ARCHIVE


def test_nothing_found_lists_every_place_tried(tmp_path, homes):
    with pytest.raises(cifar100.DataError) as caught:
        prepare_data(cifar_options())
    message = str(caught.value)
    datasets = tmp_path / "user" / ".keras" / "datasets"
    assert f"no CIFAR-100 archive at {homes / ARCHIVE}" in message and str(datasets) in message
    for name in ("cifar-100-python.tar.gz", "cifar-100-python-target/cifar-100-python",
                 "cifar-100-python-target_archive", "cifar-100-python_archive"):
        assert name in message, f"{name} not listed: {message}"
    assert "--download" in message and "--data" in message


def flowers_zip(tmp_path, name="flowers.zip"):
    """The lab's archive layout: ``flowers/<class>/*`` for the five classes."""
    folder = write_image_folder(tmp_path / "zip-source" / "flowers", classes=flowers.CLASSES, per_class=2)
    path = tmp_path / name
    with zipfile.ZipFile(path, "w") as zipped:
        for file in sorted(folder.rglob("*")):
            zipped.write(file, file.relative_to(folder.parent))
    return path


def flowers_options(source, val_fraction=0.5):
    return DataOptions("flowers", str(source), 16, None, val_fraction, 0)


def test_flowers_zip_is_unpacked_once_into_the_cache(tmp_path, homes, monkeypatch):
    archive = flowers_zip(tmp_path)
    prepared = prepare_data(flowers_options(archive))
    assert prepared.train.class_names == flowers.CLASSES and len(prepared.train.labels) == 5
    unpacked = list((homes / "unpacked").iterdir())
    assert [path.name.startswith("flowers-") for path in unpacked] == [True], unpacked
    from_folder = prepare_data(flowers_options(unpacked[0]))
    assert np.array_equal(prepared.val.images, from_folder.val.images)
    with monkeypatch.context() as patch:
        patch.setattr(flowers, "unpack", lambda *args: pytest.fail("unpacked a second time"))
        assert np.array_equal(prepare_data(flowers_options(archive)).val.images, prepared.val.images)
    os.utime(archive, (1_000_000, 1_000_000))  # a replaced zip gets its own folder
    prepare_data(flowers_options(archive))
    assert len(list((homes / "unpacked").iterdir())) == 2


def run_metrics(options, prepared):
    """What the runner records of a run's data (metrics.json["data"])."""
    return {"data": {**options.to_json(), "classes": list(prepared.train.class_names)}}


def test_split_records_validation_files_and_folder_fingerprint(tmp_path):
    folder = write_image_folder(tmp_path / "flowers", per_class=4)
    prepared = prepare_data(flowers_options(folder))
    assert prepared.split["val_files"] == list(prepared.val.files) and len(prepared.val.files) == 6
    assert all((folder / file).is_file() for file in prepared.split["val_files"])
    assert len(prepared.split["fingerprint"]) == 16


def test_recorded_validation_finds_the_same_files_after_the_folder_changed(tmp_path):
    from PIL import Image

    folder = write_image_folder(tmp_path / "flowers", per_class=4)
    options = flowers_options(folder)
    prepared = prepare_data(options)
    metrics, split = run_metrics(options, prepared), prepared.split
    images, labels, note = recorded_validation(metrics, split)
    assert note == "" and np.array_equal(images, prepared.val.images) and np.array_equal(labels, prepared.val.labels)

    # New images everywhere, a new class that sorts first (it shifts the folder's label indices), one recorded
    # validation image gone: a fresh split would now hold other images.
    for name in ("aster", "daisy", "rose", "tulip"):
        (folder / name).mkdir(exist_ok=True)
        for index in range(3):
            Image.new("RGB", (30, 30), (index * 80, 200, 40)).save(folder / name / f"new_{index}.png")
    (folder / split["val_files"][0]).unlink()
    assert not np.array_equal(prepare_data(options).split["val"], split["val"])
    images, labels, note = recorded_validation(metrics, split)
    assert np.array_equal(images, prepared.val.images[1:]) and np.array_equal(labels, prepared.val.labels[1:])
    assert "the data folder changed since training" in note and "1 recorded validation images gone" in note
    assert "evaluating on the 5 recorded validation images still present" in note, note


def test_recorded_validation_of_a_run_without_files_splits_again(archive):
    options = cifar_options(archive)
    prepared = prepare_data(options)
    images, labels, note = recorded_validation(run_metrics(options, prepared), prepared.split)
    assert note == "" and np.array_equal(images, prepared.val.images) and np.array_equal(labels, prepared.val.labels)
