"""Damaged or unusable data, refused with one line that names the file and what was wrong, before anything is
decoded or written: CIFAR pickles with missing entries or wrong shapes, --data paths of the wrong kind, a folder
with one class, images that cannot fit in memory, splits with nothing to train on or validate, a CNNLAB_HOME that
is a file, and a .pth that holds no state dict."""

import io
import pickle
import tarfile

import numpy as np
import pytest

from shared.data import image_folder
from shared.data.cifar100 import ARCHIVE, DEFAULT_CLASSES, load_cifar100
from shared.util.errors import DataError, UsageError, WeightsError
from shared.run.experiments import DataOptions, prepare_data
from shared.util.home import cnnlab_home
from tests.support.helpers import write_cifar100_archive, write_image_folder


# cnnlab's and Keras's caches inside tmp_path (the ``homes`` fixture, shared/tests/conftest.py), empty.
pytestmark = pytest.mark.usefixtures("homes")


@pytest.fixture(scope="module")
def pickles(tmp_path_factory):
    """The three parts of a good archive, unpickled, to damage one at a time."""
    archive = write_cifar100_archive(tmp_path_factory.mktemp("cifar") / ARCHIVE, 2, 1)
    with tarfile.open(archive) as tar:
        return {name: pickle.load(tar.extractfile(f"cifar-100-python/{name}"), encoding="bytes")
                for name in ("train", "test", "meta")}


def write_parts(parts: dict, tmp_path, layout: str):
    """The parts as the extracted folder or as the tarball, the two forms load_cifar100 reads."""
    if layout == "folder":
        folder = tmp_path / "cifar-100-python"
        folder.mkdir()
        for name, content in parts.items():
            (folder / name).write_bytes(content if isinstance(content, bytes) else pickle.dumps(content, protocol=2))
        return folder
    path = tmp_path / ARCHIVE
    with tarfile.open(path, "w:gz") as tar:
        for name, content in parts.items():
            payload = content if isinstance(content, bytes) else pickle.dumps(content, protocol=2)
            info = tarfile.TarInfo(f"cifar-100-python/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return path


def without(mapping: dict, key: bytes) -> dict:
    return {name: value for name, value in mapping.items() if name != key}


DAMAGE = {  # part -> how it is damaged, and what the message must say
    "no-data": ("train", lambda part: without(part, b"data"), "lacks the 'data' entry"),
    "no-fine-labels": ("test", lambda part: without(part, b"fine_labels"), "lacks the 'fine_labels' entry"),
    "no-label-names": ("meta", lambda part: without(part, b"fine_label_names"), "lacks the 'fine_label_names'"),
    "not-a-dict": ("meta", lambda part: [1, 2, 3], "lacks the 'fine_label_names'"),
    "short-rows": ("train", lambda part: {**part, b"data": part[b"data"][:, :3000]}, "'data' is 200 x 3000 uint8, "
                   "expected N x 3072 uint8"),
    "float-data": ("test", lambda part: {**part, b"data": part[b"data"].astype(np.float32)}, "float32, expected N x "
                   "3072 uint8"),
    "label-count": ("train", lambda part: {**part, b"fine_labels": part[b"fine_labels"][:-1]}, "199 int64 values "
                    "for 200 images"),
    "label-range": ("test", lambda part: {**part, b"fine_labels": [label + 1 for label in part[b"fine_labels"]]},
                    "'fine_labels' runs from 1 to 100, expected 0 to 99"),
    "not-a-pickle": ("train", lambda part: b"this is not a pickle", "cannot be read"),
}


@pytest.mark.parametrize("layout", ["folder", "tarball"])
@pytest.mark.parametrize("damage", DAMAGE, ids=list(DAMAGE))
def test_damaged_cifar_pickle_is_named_with_what_is_wrong(pickles, tmp_path, layout, damage):
    part, spoil, expected = DAMAGE[damage]
    source = write_parts({**pickles, part: spoil(pickles[part])}, tmp_path, layout)
    with pytest.raises(DataError) as caught:
        load_cifar100(source, DEFAULT_CLASSES)
    message = str(caught.value)
    assert expected in message, message
    named = str(source / part) if layout == "folder" else f"{source} (cifar-100-python/{part})"
    assert message.startswith(named), message


def cifar_options(source):
    return DataOptions("cifar100-pooling", str(source), 32, None, 0.2, 0)


@pytest.mark.parametrize("make, expected", [
    (lambda path: None, "does not exist"),
    (lambda path: path.write_text("not an archive"), "is a file, not the CIFAR-100 archive"),
    (lambda path: path.mkdir(), "holds neither cifar-100-python.tar.gz nor a cifar-100-python folder"),
    (lambda path: (path.mkdir(), (path / "train").write_bytes(b"")), "lacks test, meta of the CIFAR-100 pickles"),
], ids=["missing", "text-file", "empty-folder", "partial-folder"])
def test_wrong_cifar_data_flag_says_what_was_expected_and_not_download(tmp_path, make, expected):
    given = tmp_path / "given"
    make(given)
    with pytest.raises(DataError) as caught:
        prepare_data(cifar_options(given))
    message = str(caught.value)
    assert f"--data {given}" in message and expected in message and "cifar-100-python.tar.gz" in message, message
    assert "--download" not in message, "--download does not fill a path given with --data"


def test_truncated_cifar_data_flag_does_not_suggest_download(tmp_path):
    archive = write_cifar100_archive(tmp_path / "good" / ARCHIVE, 1, 1)
    truncated = tmp_path / ARCHIVE
    truncated.write_bytes(archive.read_bytes()[:2000])
    with pytest.raises(DataError, match="cannot be read") as caught:
        prepare_data(cifar_options(truncated))
    assert "--download" not in str(caught.value)


def flowers_options(source, image_size=16, val_fraction=0.2):
    return DataOptions("flowers", str(source), image_size, None, val_fraction, 0)


def test_flowers_data_flag_that_is_a_file_but_not_a_zip(tmp_path):
    given = tmp_path / "flowers.tar"
    given.write_bytes(b"not a zip")
    with pytest.raises(DataError, match=f"--data {given} is a file, not a folder of class subfolders or a .zip$"):
        prepare_data(flowers_options(given))


def test_truncated_flowers_zip_is_reported(tmp_path, homes):
    given = tmp_path / "flowers.zip"
    given.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(DataError, match=f"{given} is not a complete zip archive"):
        prepare_data(flowers_options(given))
    assert not list((homes / "unpacked").iterdir()), "no half-unpacked folder left behind"


def test_image_folder_root_that_is_a_file(tmp_path):
    given = tmp_path / "daisy.jpg"
    given.write_bytes(b"\xff\xd8")
    with pytest.raises(DataError, match=f"data folder {given} is a file, not a folder; expected a folder with one "
                                        f"subfolder of images per class"):
        image_folder.list_image_folder(given)


@pytest.fixture
def no_decoding(monkeypatch):
    monkeypatch.setattr(image_folder, "decode_image", lambda path, size: pytest.fail("decoded before refusing"))


def test_one_class_is_refused_before_decoding(tmp_path, no_decoding):
    folder = write_image_folder(tmp_path / "flowers", classes=("daisy",), per_class=3)
    with pytest.raises(DataError, match="has one class subfolder \\(daisy\\); a classifier needs at least 2 classes"):
        image_folder.load_image_folder(folder, 16, tmp_path / "cache")


def test_image_size_too_large_for_memory_is_refused_before_decoding(tmp_path, no_decoding, monkeypatch):
    folder = write_image_folder(tmp_path / "flowers", per_class=2)
    # Six images a million pixels square: 16,764 GiB, more than any machine this runs on.
    with pytest.raises(UsageError, match=r"--image-size 1000000: the 6 images in .* decoded at 1000000x1000000 need "
                                         r"16763.8 GiB of memory, and [\d.]+ GiB is available"):
        image_folder.load_image_folder(folder, 1_000_000, tmp_path / "cache")
    monkeypatch.setattr(image_folder, "available_memory", lambda: 2 * 2**30)
    with pytest.raises(UsageError, match="at 16384x16384 need 4.5 GiB of memory, and 2.0 GiB is available; pass a "
                                         "smaller --image-size"):
        image_folder.load_image_folder(folder, 16384, tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


def test_available_memory_is_read_from_the_system():
    available = image_folder.available_memory()
    with open("/proc/meminfo") as meminfo:
        total = int(next(line for line in meminfo if line.startswith("MemTotal:")).split()[1]) * 1024
    assert 0 < available <= total


@pytest.mark.parametrize("per_class, fraction, expected", [
    (1, 0.2, "leaves the validation set empty: the largest class 'daisy' has 1 of the 3 images; with 1 image per "
             "class no --val-fraction works: give 'daisy' at least 2 images"),
    (4, 0.001, "--val-fraction 0.001 leaves the validation set empty: the largest class 'daisy' has 4 of the 12 "
               "images; use a --val-fraction above 0.042 and below 0.875, or give 'daisy' at least 493 images"),
    (4, 0.999, "--val-fraction 0.999 puts all 4 images of class 'daisy' in validation, leaving none to train on; "
               "use a --val-fraction above 0.042 and below 0.875, or give 'daisy' at least 501 images"),
], ids=["one-image-per-class", "tiny-fraction", "huge-fraction"])
def test_unusable_split_is_refused_before_a_run_directory_exists(tmp_path, per_class, fraction, expected, capsys):
    from shared.commands.train import main

    folder = write_image_folder(tmp_path / "flowers", per_class=per_class)
    out = tmp_path / "run"
    argv = ["--experiment", "flowers", "--data", str(folder), "--image-size", "16", "--val-fraction", str(fraction),
            "--out", str(out)]
    assert main("torch", lambda: pytest.fail("the backend was loaded"), argv) == 2
    assert expected in capsys.readouterr().err
    assert not out.exists()


def test_cnnlab_home_that_is_a_file(tmp_path, monkeypatch):
    (tmp_path / "home-file").write_text("")
    monkeypatch.setenv("CNNLAB_HOME", str(tmp_path / "home-file"))
    with pytest.raises(UsageError, match=f"^CNNLAB_HOME={tmp_path / 'home-file'} is a file; point it at a folder "
                                         f"\\(or unset it\\)$"):
        cnnlab_home()


@pytest.mark.parametrize("content, held", [
    (lambda torch: torch.zeros(3), "holds a Tensor, not a state dict"),
    (lambda torch: {"conv1.weight": [1.0, 2.0]}, "holds a dict with values that are not tensors, not a state dict"),
], ids=["bare-tensor", "dict-of-lists"])
def test_pth_without_a_state_dict(tmp_path, content, held):
    torch = pytest.importorskip("torch")
    from cnnlab_torch.pretrained import port_checkpoint

    checkpoint = tmp_path / "resnet18.pth"
    torch.save(content(torch), checkpoint)
    with pytest.raises(WeightsError, match=f"{held}; expected torchvision's resnet18 state dict"):
        port_checkpoint(checkpoint, tmp_path / "ported.npz")
    assert not (tmp_path / "ported.npz").exists()
