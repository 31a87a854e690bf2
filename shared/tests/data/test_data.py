"""The embedded dataset, the seeded split and the shared batch order."""

import numpy as np
import pytest

from shared.data.dataset import Dataset, batch_indices, load_digits_rgb, steps_per_epoch, stratified_split
from shared.util.errors import UsageError


def test_digits_rendered_to_32x32_rgb_uint8():
    data = load_digits_rgb()
    assert data.images.shape == (1797, 32, 32, 3) and data.images.dtype == np.uint8
    assert data.class_names == tuple("0123456789")
    assert data.images.max() == 255 and data.images.min() == 0, "0-16 intensities scaled to the full 0-255 range"
    assert (data.images[..., 0] == data.images[..., 2]).all(), "grey digits: equal channels"


def test_digits_are_scikit_learns_load_digits():
    """Read from scikit-learn's file without importing scikit-learn; its own loader is the reference."""
    from sklearn.datasets import load_digits

    reference, data = load_digits(), load_digits_rgb()
    assert np.array_equal(data.labels, reference.target)
    assert data.class_names == tuple(str(name) for name in reference.target_names)
    # every 4x4 block of the 32x32 image is the 8x8 image's pixel, scaled from 0-16 to 0-255
    assert np.array_equal(data.images[:, ::4, ::4, 1], np.rint(reference.images * 255 / 16).astype(np.uint8))


def test_split_is_seeded_disjoint_complete_and_stratified():
    labels = load_digits_rgb().labels
    split = stratified_split(labels, 0.2, seed=0)
    assert np.array_equal(split.train, stratified_split(labels, 0.2, seed=0).train)
    assert not np.array_equal(split.val, stratified_split(labels, 0.2, seed=1).val)
    assert np.intersect1d(split.train, split.val).size == 0
    assert len(split.train) + len(split.val) == len(labels)
    for label in range(10):
        members = (labels == label).sum()
        assert (labels[split.val] == label).sum() == round(0.2 * members)


def test_batch_order_is_seeded_per_epoch_and_covers_every_item_once():
    first = list(batch_indices(100, 32, seed=0, epoch=1))
    assert [len(batch) for batch in first] == [32, 32, 32, 4] and steps_per_epoch(100, 32) == 4
    assert sorted(np.concatenate(first)) == list(range(100))
    again = list(batch_indices(100, 32, seed=0, epoch=1))
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[0], next(batch_indices(100, 32, seed=0, epoch=2)))
    assert np.array_equal(next(batch_indices(10, 4)), [0, 1, 2, 3]), "no seed: validation order"


def split_before_checks(labels, val_fraction, seed):
    """stratified_split as it was before it refused anything: its results on usable inputs must not change."""
    rng = np.random.default_rng(seed)
    val = [rng.permutation(np.flatnonzero(labels == label))[:int(round(val_fraction * (labels == label).sum()))]
           for label in np.unique(labels)]
    val = np.sort(np.concatenate(val))
    return np.setdiff1d(np.arange(len(labels)), val), val


@pytest.mark.parametrize("sizes, fraction", [([5, 5, 5], 0.2), ([1, 3, 10], 0.3), ([2, 7], 0.5), ([179, 180], 0.1)])
def test_split_of_usable_data_is_unchanged(sizes, fraction):
    labels = np.repeat(np.arange(len(sizes)), sizes)
    np.random.default_rng(1).shuffle(labels)
    split = stratified_split(labels, fraction, seed=4)
    train, val = split_before_checks(labels, fraction, 4)
    assert np.array_equal(split.train, train) and np.array_equal(split.val, val)


@pytest.mark.parametrize("sizes, fraction, message", [
    ([1, 1, 1], 0.2, "leaves the validation set empty: the largest class 'a' has 1 of the 3 images; with 1 image "
                     "per class no --val-fraction works"),
    ([3, 3], 0.001, "leaves the validation set empty: the largest class 'a' has 3 of the 6 images; use a "
                    "--val-fraction above 0.084 and below 0.833, or give 'a' at least 498 images"),
    ([4, 2], 0.999, "puts all 4 images of class 'a' in validation, leaving none to train on; use a --val-fraction "
                    "above 0.084 and below 0.75, or give 'a' at least 501 images"),
    ([3, 1], 0.7, "puts all 1 image of class 'b' in validation"),
])
def test_split_leaving_nothing_to_train_on_or_validate_is_refused(sizes, fraction, message):
    labels = np.repeat(np.arange(len(sizes)), sizes)
    with pytest.raises(UsageError, match="^--val-fraction") as caught:
        stratified_split(labels, fraction, seed=0, class_names=("a", "b"))
    assert message in str(caught.value), str(caught.value)


def test_quoted_fractions_and_image_counts_do_work():
    """What a refusal proposes is itself accepted."""
    for sizes, fraction in (([3, 3], 0.084), ([3, 3], 0.833), ([498, 3], 0.001), ([501], 0.999)):
        labels = np.repeat(np.arange(len(sizes)), sizes)
        split = stratified_split(labels, fraction, seed=0)
        assert len(split.val) and len(np.unique(labels[split.train])) == len(sizes), (sizes, fraction)


def test_small_folder_gets_one_validation_image_where_every_class_rounds_down():
    # 3 classes of 2 at 0.2: each class's share rounds to 0, but 0.2 of 6 images asks for one.
    split = stratified_split(np.repeat(np.arange(3), 2), 0.2, seed=0)
    assert len(split.val) == 1 and split.val[0] in (0, 1), "one image of the largest (first) class"
    assert len(split.train) == 5


def test_subset_carries_file_names():
    dataset = Dataset("d", np.zeros((3, 2, 2, 3), np.uint8), np.arange(3), ("a", "b", "c"), files=("x", "y", "z"))
    assert dataset.subset(np.array([2, 0])).files == ("z", "x")
    assert Dataset("d", dataset.images, dataset.labels, dataset.class_names).subset(np.array([1])).files == ()

