"""The shared augmentation: crops and flips drawn from (seed, epoch, batch), and the NumPy reference gather."""

import numpy as np
import pytest

from shared.data.augment import Augmentation, Crops, apply, draw, pad

CROP_AND_FLIP = Augmentation(padding=4, flip=True)


def test_draws_depend_on_seed_epoch_and_batch_only():
    first = draw(CROP_AND_FLIP, 0, 3, 7, 32, 32)
    again = draw(CROP_AND_FLIP, 0, 3, 7, 32, 32)
    assert np.array_equal(first.rows, again.rows) and np.array_equal(first.cols, again.cols), "same key, same crops"
    for other in (draw(CROP_AND_FLIP, 1, 3, 7, 32, 32), draw(CROP_AND_FLIP, 0, 4, 7, 32, 32),
                  draw(CROP_AND_FLIP, 0, 3, 8, 32, 32)):
        assert not np.array_equal(first.cols, other.cols), "another seed, epoch or batch draws other crops"


def test_a_crop_is_a_window_of_the_padded_image_possibly_mirrored():
    crops = draw(CROP_AND_FLIP, 0, 1, 1, 2000, 8)
    steps = np.arange(8)
    tops, lefts = crops.rows[:, 0], crops.cols.min(axis=1)
    assert np.array_equal(crops.rows, tops[:, None] + steps), "rows are consecutive from the crop's top"
    assert set(tops.tolist()) == set(range(9)) and set(lefts.tolist()) == set(range(9)), \
        "padding 4 gives 2 * 4 + 1 = 9 positions per axis, all of them drawn"
    flipped = crops.cols[:, 0] > crops.cols[:, -1]
    assert np.array_equal(crops.cols[~flipped], lefts[~flipped, None] + steps)
    assert np.array_equal(crops.cols[flipped], lefts[flipped, None] + steps[::-1]), "a flip reads columns backwards"
    # 2000 fair coin flips: 1000 +- 5 standard deviations (22.4 each)
    assert 888 < flipped.sum() < 1112, f"{flipped.sum()} of 2000 images flipped; expected about half"


def test_flip_only_never_moves_and_crop_only_never_mirrors():
    flips = draw(Augmentation(padding=0, flip=True), 0, 1, 1, 100, 8)
    assert set(flips.rows[:, 0].tolist()) == {0} and set(flips.cols.min(axis=1).tolist()) == {0}
    crops = draw(Augmentation(padding=2, flip=False), 0, 1, 1, 100, 8)
    assert (np.diff(crops.cols, axis=1) == 1).all(), "no flip asked for"


def test_apply_reads_through_the_crops_by_hand():
    image = np.arange(1, 5, dtype=np.uint8).reshape(1, 2, 2, 1)  # [[1, 2], [3, 4]]
    padded = pad(image, 1)
    assert padded[0, :, :, 0].tolist() == [[0, 0, 0, 0], [0, 1, 2, 0], [0, 3, 4, 0], [0, 0, 0, 0]], "black border"
    mirrored = Crops(rows=np.array([[1, 2]]), cols=np.array([[2, 1]]))  # the original window, flipped
    assert apply(padded, np.array([0]), mirrored)[0, :, :, 0].tolist() == [[2, 1], [4, 3]]
    corner = Crops(rows=np.array([[0, 1]]), cols=np.array([[0, 1]]))  # shifted one pixel down and right
    assert apply(padded, np.array([0]), corner)[0, :, :, 0].tolist() == [[0, 0], [0, 1]]


def test_no_padding_and_no_flip_is_the_identity():
    images = np.random.default_rng(0).integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
    crops = draw(Augmentation(), 0, 1, 1, 3, 8)
    assert np.array_equal(apply(pad(images, 0), np.array([4, 0, 2]), crops), images[[4, 0, 2]])


def test_negative_padding_is_refused():
    with pytest.raises(ValueError, match="padding must be 0 or more"):
        Augmentation(padding=-1)
