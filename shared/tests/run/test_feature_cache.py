"""When the feature cache applies, what its key covers, and how it reads and writes its files, with a stand-in
backend whose "backbone" is NumPy arithmetic (the real backbones are in tests/test_feature_cache.py)."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import subprocess

import numpy as np
import pytest

from shared.formats import rundir
from shared.run import feature_cache
from shared.commands.cli import build_parser
from shared.training.config import TrainConfig
from shared.data.dataset import Dataset
from shared.run.plan import plan_from_args
from shared.model.registry import build_spec
from shared.run.resume import plan_resume
from shared.model.shapes import parameters

RESNET = build_spec("resnet18", 3, 32)


@pytest.mark.parametrize("trainable, expected", [
    (("fc.",), "fc"),  # flowers-resnet18
    (("layer4.", "fc."), "layer4"),  # a deeper fine-tune: the last stage and the head
    (None, None),  # everything trains: nothing is frozen
    (("conv1.", "bn1.", "layer1.", "layer2.", "layer3.", "layer4.", "fc."), None),  # the same, spelled out
    (("conv1.",), None),  # frozen layers after a trainable one
    (("layer4.1.", "fc."), None),  # layer4 half frozen: its first block would have to run every epoch
    (("nothing.",), None),  # nothing trains
], ids=["head", "last-stage", "all", "all-by-name", "frozen-after-trainable", "half-frozen-layer", "none"])
def test_first_trainable_layer(trainable, expected):
    assert feature_cache.first_trainable_layer(RESNET, trainable) == expected


def test_the_backbone_is_every_parameter_before_the_cut():
    names = feature_cache.backbone_parameters(RESNET, "fc")
    assert names == [param.name for param in parameters(RESNET) if not param.name.startswith("fc.")]
    assert "layer4.1.bn2.running_var" in names and len(names) == 20 + 20 * 4, "20 convs and 20 BatchNorms, by hand"


def key_inputs(**changes) -> dict:
    rng = np.random.default_rng(0)
    inputs = {"framework": "torch", "spec": RESNET, "first_trainable": "fc",
              "backbone_weights": {"conv1.weight": rng.normal(size=(64, 3, 7, 7)).astype(np.float32),
                                   "bn1.running_var": np.ones(64, np.float32)},
              "images": (rng.integers(0, 256, (5, 32, 32, 3), dtype=np.uint8),
                         rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)),
              "precision": "32-true"}
    return {**inputs, **changes}


def nudged(array: np.ndarray) -> np.ndarray:
    """The first element one step up: one ulp of a float, one level of a uint8 pixel."""
    array = array.copy()
    array.flat[0] = np.nextafter(array.flat[0], np.inf) if array.dtype.kind == "f" else array.flat[0] ^ 1
    return array


def test_the_key_changes_with_everything_the_features_depend_on():
    base = key_inputs()
    weights, (train, val) = base["backbone_weights"], base["images"]
    changed = {
        "framework": key_inputs(framework="tf"),
        "image size": key_inputs(spec=build_spec("resnet18", 3, 64)),
        "cut": key_inputs(first_trainable="layer4"),
        "precision": key_inputs(precision="bf16-mixed"),
        "a weight by one ulp": key_inputs(backbone_weights={**weights,
                                                            "conv1.weight": nudged(weights["conv1.weight"])}),
        "a statistic by one ulp": key_inputs(backbone_weights={**weights,
                                                               "bn1.running_var": nudged(weights["bn1.running_var"])}),
        "a pixel": key_inputs(images=(nudged(train), val)),
        "an image moved to validation": key_inputs(images=(train[:-1], np.concatenate([train[-1:], val]))),
        "image order": key_inputs(images=(train[::-1], val)),
    }
    key = feature_cache.cache_key(**base)
    assert len(key) == 64 and key == feature_cache.cache_key(**key_inputs()), "the key must be reproducible"
    same = [what for what, inputs in changed.items() if feature_cache.cache_key(**inputs) == key]
    assert not same, f"the key ignores: {same}"


def test_the_key_reads_values_not_memory_layout():
    base = key_inputs()
    weights = {name: np.asfortranarray(value) for name, value in base["backbone_weights"].items()}
    reordered = dict(reversed(list(weights.items())))
    assert feature_cache.cache_key(**key_inputs(backbone_weights=reordered)) == feature_cache.cache_key(**base)


class StandInBackend:
    """A backend whose backbone sums each image's pixels, counting the images it computes."""

    framework = "torch"

    def __init__(self, weights: dict):
        self.weights, self.computed = weights, 0

    def get_weights(self, model, spec):
        return self.weights

    def backbone_features(self, model, spec, first_trainable_layer, images, batch_size, on_batch):
        for start in range(0, len(images), batch_size):
            on_batch(len(images[start:start + batch_size]))
        self.computed += len(images)
        return images.reshape(len(images), -1).sum(axis=1, keepdims=True).astype(np.float32)


@pytest.fixture
def stand_in(homes):
    """A stand-in backend, ResNet-18's weights (zeros: only their names and bytes matter) and a small data set."""
    backend = StandInBackend({param.name: np.zeros(param.shape, np.float32) for param in parameters(RESNET)})
    images = np.random.default_rng(1).integers(0, 256, (7, 32, 32, 3), dtype=np.uint8)
    data = Dataset("seven", images, np.arange(7) % 3, ("a", "b", "c"), files=tuple(f"{i}.png" for i in range(7)))
    return backend, data.subset(np.arange(5)), data.subset(np.arange(5, 7))


def feature_sets(backend, train, val, spec=RESNET):
    return feature_cache.feature_sets(backend, None, spec, "fc", train, val, TrainConfig(batch_size=2))


def test_features_are_computed_once_then_read(stand_in, homes):
    backend, train, val = stand_in
    first = feature_sets(backend, train, val)
    assert not first.loaded and backend.computed == 7 and first.path.parent == homes / "features"
    second = feature_sets(backend, train, val)
    assert second.loaded and backend.computed == 7, "a second run must read the cache, not compute"
    assert np.array_equal(second.train.images, train.images.reshape(5, -1).sum(axis=1, keepdims=True))
    assert (second.train.labels, second.train.class_names, second.val.files) == \
        (train.labels, train.class_names, val.files), "labels, classes and files are kept"


def test_other_weights_or_another_image_size_compute_their_own_features(stand_in):
    backend, train, val = stand_in
    paths = {feature_sets(backend, train, val).path}
    backend.weights = {**backend.weights, "conv1.weight": backend.weights["conv1.weight"] + 1}
    paths.add(feature_sets(backend, train, val).path)
    paths.add(feature_sets(backend, train, val, build_spec("resnet18", 3, 64)).path)
    assert len(paths) == 3 and backend.computed == 3 * 7


def pixel_sums(data: Dataset) -> np.ndarray:
    """The stand-in backbone's features, worked out here: what a fresh computation must give."""
    return data.images.reshape(len(data.images), -1).sum(axis=1, keepdims=True).astype(np.float32)


def checksum_by_hand(features: dict) -> str:
    """The documented checksum: sha256 over train then val, each as its name, its dtype and shape, its bytes, every
    field after its length in 8 little-endian bytes."""
    digest = hashlib.sha256()
    for part in ("train", "val"):
        array = np.ascontiguousarray(features[part])
        for field in (part.encode(), f"{array.dtype.str}{array.shape}".encode(), array.tobytes()):
            digest.update(len(field).to_bytes(8, "little") + field)
    return digest.hexdigest()


def write_cache_file(path, key: str, features: dict, checksum: str | None = None) -> None:
    """A cache file in the layout the cache writes: the key, the checksum and one array per part."""
    checksum = checksum_by_hand(features) if checksum is None else checksum
    np.savez(path, key=np.array(key), checksum=np.array(checksum), **features)


def stored_key(path) -> str:
    with np.load(path) as archive:
        return str(archive["key"])


def warnings(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("warning:")]


def test_a_file_in_the_documented_format_is_read(stand_in):
    """Pins the file layout and the checksum to their description: a file written by hand is a hit, values and all."""
    backend, train, val = stand_in
    path = feature_sets(backend, train, val).path
    written = {"train": pixel_sums(train) + 0.5, "val": pixel_sums(val) + 0.5}  # not what the backbone gives
    write_cache_file(path, stored_key(path), written)
    read = feature_sets(backend, train, val)
    assert read.loaded and backend.computed == 7, "a whole file of this key must be read, not computed"
    assert np.array_equal(read.train.images, written["train"]) and np.array_equal(read.val.images, written["val"])


@pytest.mark.parametrize("damage", ["truncated", "not a zip", "another key", "no checksum", "a folder"])
def test_a_damaged_or_foreign_cache_file_is_computed_again(stand_in, capsys, damage):
    backend, train, val = stand_in
    path = feature_sets(backend, train, val).path
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:-20])
    elif damage == "not a zip":
        path.write_text("features")
    elif damage == "another key":
        with np.load(path) as archive:
            np.savez(path, **{**archive, "key": np.array("0" * 64)})
    elif damage == "no checksum":  # a file from before the checksum: the entries of FORMAT 1
        with np.load(path) as archive:
            np.savez(path, **{name: archive[name] for name in ("key", "train", "val")})
    else:
        path.unlink()
        path.mkdir()
    again = feature_sets(backend, train, val)
    assert not again.loaded and backend.computed == 2 * 7
    assert str(path) in capsys.readouterr().err
    assert np.array_equal(again.train.images, pixel_sums(train)), "the features must be computed afresh"
    if damage != "a folder":  # a folder is not written over: the cache steps aside (tested below)
        assert feature_sets(backend, train, val).loaded, "the recomputed file must be whole again"


@pytest.mark.parametrize("fault", ["a train row short", "a val row extra", "integer features", "one value a row"])
def test_a_file_of_the_right_key_with_misshapen_features_is_computed_again(stand_in, capsys, fault):
    """Each file has a valid checksum of what it holds, so the shape checks alone must catch it."""
    backend, train, val = stand_in
    path = feature_sets(backend, train, val).path
    features = {"train": pixel_sums(train), "val": pixel_sums(val)}
    if fault == "a train row short":
        features["train"] = features["train"][:-1]
    elif fault == "a val row extra":
        features["val"] = np.concatenate([features["val"], features["val"][:1]])
    elif fault == "integer features":
        features = {part: array.astype(np.int64) for part, array in features.items()}
    else:
        features = {part: array[:, 0] for part, array in features.items()}
    write_cache_file(path, stored_key(path), features)
    capsys.readouterr()
    again = feature_sets(backend, train, val)  # once: AssertionError "one label per image"
    assert not again.loaded and backend.computed == 2 * 7, f"{fault}: must be computed again"
    assert np.array_equal(again.train.images, pixel_sums(train)) and np.array_equal(again.val.images, pixel_sums(val))
    lines = warnings(capsys.readouterr().err)
    assert len(lines) == 1 and str(path) in lines[0], f"one warning naming the file, got {lines}"
    assert feature_sets(backend, train, val).loaded, "the bad file must be written over"


def test_altered_values_fail_the_checksum_and_are_computed_again(stand_in, capsys):
    backend, train, val = stand_in
    path = feature_sets(backend, train, val).path
    with np.load(path) as archive:
        entries = dict(archive)
    entries["val"] = nudged(entries["val"])  # one ulp: a run on it would end a hair away from the uncached one
    np.savez(path, **entries)
    capsys.readouterr()
    again = feature_sets(backend, train, val)
    assert not again.loaded and backend.computed == 2 * 7, "altered values must not load as a hit"
    assert np.array_equal(again.val.images, pixel_sums(val)) and np.array_equal(again.train.images, pixel_sums(train))
    lines = warnings(capsys.readouterr().err)
    assert len(lines) == 1 and str(path) in lines[0] and "checksum" in lines[0], f"got {lines}"
    assert feature_sets(backend, train, val).loaded, "the altered file must be written over"


def test_an_unreadable_cache_file_is_computed_again(stand_in, capsys):
    backend, train, val = stand_in
    path = feature_sets(backend, train, val).path
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):
            pytest.skip("this user reads files without read permission (root): no unreadable file to test with")
        again = feature_sets(backend, train, val)
    finally:
        path.chmod(0o644)
    assert not again.loaded and np.array_equal(again.train.images, pixel_sums(train))
    assert "PermissionError" in capsys.readouterr().err


def run_without_cache(stand_in, capsys, features_folder) -> list[str]:
    """Computes with a cache that cannot be written: checks that the features are right, nothing is half-written, and
    one warning says why; returns the warnings."""
    backend, train, val = stand_in
    before = sorted(os.listdir(features_folder)) if features_folder.is_dir() else None
    sets = feature_sets(backend, train, val)
    assert not sets.loaded and not sets.stored and backend.computed == 7
    assert np.array_equal(sets.train.images, pixel_sums(train)) and np.array_equal(sets.val.images, pixel_sums(val))
    if before is not None:
        assert sorted(os.listdir(features_folder)) == before, "a failed write must leave no file behind"
    lines = warnings(capsys.readouterr().err)
    assert len(lines) == 1 and "could not be written" in lines[0] and "continues" in lines[0], f"got {lines}"
    return lines


def test_a_file_where_the_features_folder_should_be(stand_in, homes, capsys):
    homes.mkdir()
    (homes / "features").write_text("not a folder")
    lines = run_without_cache(stand_in, capsys, homes / "features")
    assert "FileExistsError" in lines[0] or "NotADirectoryError" in lines[0], lines
    assert (homes / "features").read_text() == "not a folder", "the user's file must be left alone"


@contextlib.contextmanager
def tmpfs(folder, options: str):
    """A tmpfs mounted at ``folder`` for the block; skips when this user may not mount one."""
    folder.mkdir(parents=True, exist_ok=True)
    mount = shutil.which("mount")
    done = mount and subprocess.run([mount, "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                                    capture_output=True, text=True)
    if not done or done.returncode:
        pytest.skip(f"cannot mount a tmpfs ({done.stderr.strip() if done else 'no mount command'})")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@contextlib.contextmanager
def read_only(folder):
    """``folder`` made read-only: by its mode, or for root, whom modes do not stop, as a read-only mount."""
    folder.mkdir(parents=True)
    folder.chmod(0o555)
    try:
        if not os.access(folder, os.W_OK):
            yield folder
            return
    finally:
        folder.chmod(0o755)
    with tmpfs(folder, "ro,size=64k"):
        yield folder


def test_a_read_only_features_folder(stand_in, homes, capsys):
    with read_only(homes / "features") as folder:
        lines = run_without_cache(stand_in, capsys, folder)
    assert "PermissionError" in lines[0] or "Read-only file system" in lines[0], lines


def fill(folder) -> None:
    """Write into ``folder`` until its file system is full."""
    handle = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)  # unbuffered: no flush to fail again on close
    try:
        while True:
            os.write(handle, bytes(4096))
    except OSError as error:
        assert error.errno == errno.ENOSPC, error
    finally:
        os.close(handle)


def test_a_full_disk(stand_in, homes, capsys):
    with tmpfs(homes / "features", "size=64k") as folder:
        fill(folder)
        lines = run_without_cache(stand_in, capsys, folder)
    assert "No space left" in lines[0], lines


def test_a_full_disk_while_saving_leaves_no_part_file(stand_in, homes, capsys, monkeypatch):
    """Where no tmpfs can be mounted: the save writes some bytes, then the disk is full."""
    def full_disk(file, **arrays):
        file.write(b"PK" * 1000)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    (homes / "features").mkdir(parents=True)
    monkeypatch.setattr(np, "savez", full_disk)
    lines = run_without_cache(stand_in, capsys, homes / "features")
    assert "No space left" in lines[0], lines



def test_a_resumed_run_may_turn_the_cache_off(tmp_path):
    """--no-feature-cache changes only the speed, so --resume takes it."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    plan = plan_from_args(build_parser("train").parse_args(["--experiment", "flowers-resnet18"]))
    rundir.write_json(run_dir / rundir.RUN, plan.to_json("torch"))
    argv = ["--resume", str(run_dir), "--out", str(tmp_path / "continued"), "--no-feature-cache"]
    job = plan_resume(build_parser("train").parse_args(argv), argv, "torch")
    assert plan.config.feature_cache and not job.plan.config.feature_cache
