"""Image folders: class names as torchvision's ImageFolder finds them, debris ignored, every format decoded to the
same uint8 pixels once, a cache that follows the folder, and one clear message for each bad folder."""

import numpy as np
import pytest
from PIL import Image

from shared import image_folder
from shared.errors import UsageError
from shared.image_folder import list_image_folder, load_image_folder
from tests.helpers import write_image_folder


@pytest.fixture
def folder(tmp_path):
    return write_image_folder(tmp_path / "flowers", classes=("tulip", "daisy", "rose"), per_class=4)


def test_classes_are_sorted_folder_names_and_debris_is_ignored(folder):
    listing = list_image_folder(folder)
    assert listing.class_names == ("daisy", "rose", "tulip")
    assert len(listing.files) == 12, "4 images per class; .ipynb_checkpoints and .DS_Store are not images"
    assert not [path for path in listing.files if ".ipynb_checkpoints" in path.parts]
    assert listing.labels == (0,) * 4 + (1,) * 4 + (2,) * 4


def test_every_format_decodes_to_rgb_at_the_requested_size(folder, tmp_path):
    dataset = load_image_folder(folder, 24, tmp_path / "cache")
    assert dataset.images.shape == (12, 24, 24, 3) and dataset.images.dtype == np.uint8
    # Pillow's own RGB conversion and bilinear resize of one greyscale PNG, independently of the loader.
    grey = folder / "daisy" / "daisy_1.png"
    with Image.open(grey) as image:
        expected = np.asarray(image.convert("RGB").resize((24, 24), Image.Resampling.BILINEAR))
    index = list_image_folder(folder).files.index(grey.relative_to(folder))
    assert np.array_equal(dataset.images[index], expected)


def test_cache_is_reused_and_follows_the_folder(folder, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = load_image_folder(folder, 16, cache)
    monkeypatch.setattr(image_folder, "decode_image", lambda path, size: pytest.fail("decoded again"))
    assert np.array_equal(load_image_folder(folder, 16, cache).images, first.images)
    monkeypatch.undo()
    Image.new("RGB", (40, 30), (255, 0, 0)).save(folder / "rose" / "new.jpg")
    assert len(load_image_folder(folder, 16, cache).labels) == 13, "an added image makes a new cache entry"
    assert load_image_folder(folder, 8, cache).images.shape[1] == 8, "another size makes a new cache entry"
    assert len(list(cache.glob("*.npz"))) == 3


def test_corrupt_image_is_skipped_named_and_counted(folder, tmp_path, capsys):
    broken = folder / "rose" / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 truncated jpeg")
    dataset = load_image_folder(folder, 16, tmp_path / "cache")
    assert len(dataset.labels) == 12 and dataset.skipped == ("rose/broken.jpg",)
    assert f"skipping unreadable image {broken}" in capsys.readouterr().err
    assert load_image_folder(folder, 16, tmp_path / "cache").skipped == ("rose/broken.jpg",), "cached with it"


@pytest.mark.parametrize("make, message", [
    (lambda root: None, "does not exist"),
    (lambda root: root.mkdir(), "has no class subfolders"),
    (lambda root: (root / "daisy").mkdir(parents=True), "class folder .*daisy has no images"),
], ids=["missing", "empty", "class-without-images"])
def test_bad_folders_get_one_clear_message_and_no_cache(tmp_path, make, message):
    root = tmp_path / "data"
    make(root)
    with pytest.raises(UsageError, match=message):
        load_image_folder(root, 16, tmp_path / "cache")
    assert not (tmp_path / "cache").exists()
