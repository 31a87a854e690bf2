"""Image folders: class names as torchvision's ImageFolder finds them, debris ignored, every format decoded to the
same uint8 pixels once, a cache that follows the folder, and one clear message for each bad folder."""

import numpy as np
import pytest
from PIL import Image

from shared.data import image_folder
from shared.util.errors import UsageError
from shared.data.image_folder import list_image_folder, load_image_folder
from tests.support.helpers import write_image_folder


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


def test_16_bit_greyscale_is_scaled_not_clipped(tmp_path):
    # Pillow's own convert("RGB") clips these to 0, 255, 255, 255, ...: almost all white.
    values = np.array([[0, 257, 65535], [1000, 32768, 128], [65280, 30000, 2]], dtype=np.uint16)
    image = Image.fromarray(values)
    assert image.mode == "I;16", "the PNG under test must be 16-bit"
    image.save(tmp_path / "deep.png")
    decoded = image_folder.decode_image(tmp_path / "deep.png", 3)  # its own size: no resampling
    expected = [[0, 1, 255], [4, 128, 0], [254, 117, 0]]  # 0..65535 / 257, rounded
    for channel in range(3):
        assert decoded[..., channel].tolist() == expected, f"channel {channel}: {decoded[..., channel].tolist()}"


def test_16_bit_png_in_a_folder_decodes_to_its_scaled_value(tmp_path):
    folder = write_image_folder(tmp_path / "flowers", classes=("daisy", "rose"), per_class=1)
    Image.fromarray(np.full((8, 8), 40000, dtype=np.uint16)).save(folder / "rose" / "deep.png")
    dataset = load_image_folder(folder, 4, tmp_path / "cache")
    deep = dataset.images[dataset.files.index("rose/deep.png")]
    assert (deep == round(40000 / 257)).all(), f"expected 156 everywhere, got {np.unique(deep)}"


@pytest.mark.parametrize("values, expected", [
    ([[0.0, 0.5], [1.0, 0.25]], [[0, 128], [255, 64]]),  # 0..1: scaled by 255
    ([[0.0, 100.4], [255.0, 3.6]], [[0, 100], [255, 4]]),  # 0..255: rounded
], ids=["unit-range", "byte-range"])
def test_float_images_in_a_known_range_are_read(tmp_path, values, expected):
    Image.fromarray(np.array(values, dtype=np.float32)).save(tmp_path / "float.tif")
    with Image.open(tmp_path / "float.tif") as image:
        assert image.mode == "F"
        assert np.asarray(image_folder._to_8_bit(image)).tolist() == expected


def test_float_image_of_unknown_range_is_skipped_and_named(folder, tmp_path, capsys):
    Image.fromarray(np.array([[0.0, 1000.0]], dtype=np.float32)).save(folder / "rose" / "float.tif")
    dataset = load_image_folder(folder, 8, tmp_path / "cache")
    assert dataset.skipped == ("rose/float.tif",)
    assert "float image with values from 0.0 to 1000.0; expected 0..1 or 0..255" in capsys.readouterr().err


def test_files_are_kept_in_order_and_an_old_cache_without_them_is_decoded_again(folder, tmp_path):
    cache = tmp_path / "cache"
    dataset = load_image_folder(folder, 8, cache)
    assert dataset.files == tuple(path.as_posix() for path in list_image_folder(folder).files)
    assert dataset.subset(np.array([3, 1])).files == (dataset.files[3], dataset.files[1])
    (entry,) = cache.glob("*.npz")
    with np.load(entry) as archive:  # the cache as written before file names were kept
        old = {name: archive[name] for name in ("images", "labels", "meta")}
    np.savez(entry, **old)
    assert load_image_folder(folder, 8, cache).files == dataset.files
    with np.load(entry) as archive:
        assert "files" in archive, "the cache entry was rewritten with the file names"


def test_a_photo_is_decoded_upright_by_its_exif_orientation(tmp_path):
    """A phone stores a portrait photo as landscape pixels plus EXIF orientation 6 ("rotate 90 degrees clockwise to
    show"); the decoder must see what the phone shows, in training and in predict alike."""
    upright = np.zeros((12, 8, 3), np.uint8)  # 12 rows, 8 columns: portrait
    upright[:3, :, 0] = 255  # a red top quarter: the decoded 4 x 4 image's top row
    Image.fromarray(upright).save(tmp_path / "upright.png")
    # The same picture as a camera writes it: turned a quarter counter-clockwise, with orientation 6 in EXIF
    stored = Image.fromarray(np.rot90(upright, k=1).copy())
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation
    stored.save(tmp_path / "camera.jpg", exif=exif, quality=100)
    camera = image_folder.decode_image(tmp_path / "camera.jpg", 4)
    reference = image_folder.decode_image(tmp_path / "upright.png", 4)
    assert camera[0, :, 0].min() > 200 and camera[-1, :, 0].max() < 60, "the red row must be on top"
    assert np.abs(camera.astype(int) - reference.astype(int)).max() < 40  # JPEG rounding only


@pytest.mark.parametrize("mode", ["P", "RGBA", "CMYK", "L", "LA"])
def test_every_image_mode_decodes_to_the_same_rgb_pixels(tmp_path, mode):
    """Palette (with transparency), RGBA, CMYK and greyscale files of one picture give its RGB pixels."""
    grey = np.arange(16, dtype=np.uint8).reshape(4, 4) * 16
    rgb = np.stack([grey] * 3, axis=-1)
    image = Image.fromarray(rgb).convert(mode)
    name = tmp_path / f"image.{'tif' if mode == 'CMYK' else 'png'}"
    image.save(name, **({"transparency": 0} if mode == "P" else {}))
    # A palette holds the web palette's nearest colours, not the picture's: those are what the file shows
    shown = np.asarray(image.convert("RGB")) if mode == "P" else rgb
    assert np.abs(image_folder.decode_image(name, 4).astype(int) - shown.astype(int)).max() <= 1
