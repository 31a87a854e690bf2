"""The official CIFAR-100 python archive: the pickles' layout, class subsets by name, and bad input."""

import pickle
import tarfile

import numpy as np
import pytest

from shared.data.cifar100 import DEFAULT_CLASSES, load_cifar100
from shared.util.errors import UsageError
from tests.support.helpers import CIFAR100_FINE_LABELS, write_cifar100_archive


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    return write_cifar100_archive(tmp_path_factory.mktemp("cifar") / "cifar-100-python.tar.gz", 5, 2)


def raw_part(archive, name):
    with tarfile.open(archive) as tar:
        return pickle.load(tar.extractfile(f"cifar-100-python/{name}"), encoding="bytes")


def test_subset_keeps_the_official_split_and_relabels_in_the_given_order(archive):
    train, test = load_cifar100(archive, ("pear", "apple"))
    assert (len(train.labels), len(test.labels)) == (10, 4)
    assert train.class_names == ("pear", "apple")
    raw = raw_part(archive, "train")
    fine = np.array(raw[b"fine_labels"])
    pear_rows = raw[b"data"][fine == CIFAR100_FINE_LABELS.index("pear")]
    # Rows hold the R, G and B planes of 32x32; pixel (y, x) of channel c sits at c*1024 + y*32 + x.
    first_pear = train.images[train.labels == 0][0]
    assert first_pear[3, 5, 1] == pear_rows[0][1024 + 3 * 32 + 5]
    assert np.array_equal(first_pear[..., 2].ravel(), pear_rows[0][2048:])


def test_default_classes_are_the_labs_fruit(archive):
    train, _ = load_cifar100(archive, DEFAULT_CLASSES)
    assert train.class_names == ("apple", "orange", "pear") and train.images.shape == (15, 32, 32, 3)


def test_unknown_class_lists_close_matches_first_then_all_100(archive):
    with pytest.raises(UsageError) as caught:
        load_cifar100(archive, ("aple", "pear"))
    message = str(caught.value)
    assert "'aple' is not a CIFAR-100 class; did you mean apple" in message
    listed = message.split("the 100 classes are: ")[1].split(", ")
    assert listed[0] == "apple" and sorted(listed) == sorted(CIFAR100_FINE_LABELS)


def test_truncated_archive_says_so(archive, tmp_path):
    truncated = tmp_path / "cifar-100-python.tar.gz"
    truncated.write_bytes(archive.read_bytes()[:2000])
    with pytest.raises(UsageError, match="cannot be read .*truncated"):
        load_cifar100(truncated, DEFAULT_CLASSES)
