"""The embedded dataset, the seeded split and the shared batch order."""

import numpy as np

from shared.data import batch_indices, load_digits_rgb, read_split, steps_per_epoch, stratified_split, write_split


def test_digits_rendered_to_32x32_rgb_uint8():
    data = load_digits_rgb()
    assert data.images.shape == (1797, 32, 32, 3) and data.images.dtype == np.uint8
    assert data.class_names == tuple("0123456789")
    assert data.images.max() == 255 and data.images.min() == 0, "0-16 intensities scaled to the full 0-255 range"
    assert (data.images[..., 0] == data.images[..., 2]).all(), "grey digits: equal channels"


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


def test_split_file_round_trip(tmp_path):
    split = stratified_split(np.arange(50) % 5, 0.2, seed=3)
    write_split(tmp_path / "split.json", split)
    restored = read_split(tmp_path / "split.json")
    assert restored.seed == 3 and np.array_equal(restored.train, split.train)
    assert np.array_equal(restored.val, split.val)


def test_batch_order_is_seeded_per_epoch_and_covers_every_item_once():
    first = list(batch_indices(100, 32, seed=0, epoch=1))
    assert [len(batch) for batch in first] == [32, 32, 32, 4] and steps_per_epoch(100, 32) == 4
    assert sorted(np.concatenate(first)) == list(range(100))
    again = list(batch_indices(100, 32, seed=0, epoch=1))
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[0], next(batch_indices(100, 32, seed=0, epoch=2)))
    assert np.array_equal(next(batch_indices(10, 4)), [0, 1, 2, 3]), "no seed: validation order"
