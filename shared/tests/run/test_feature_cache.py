"""When the feature cache applies, what its key covers, and how it reads and writes its files, with a stand-in
backend whose "backbone" is NumPy arithmetic (the real backbones are in tests/test_feature_cache.py)."""

from __future__ import annotations


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
        "a weight by one ulp": key_inputs(backbone_weights={**weights, "conv1.weight": nudged(weights["conv1.weight"])}),
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


@pytest.mark.parametrize("damage", ["truncated", "not a zip", "another key"])
def test_a_damaged_or_foreign_cache_file_is_computed_again(stand_in, capsys, damage):
    backend, train, val = stand_in
    path = feature_sets(backend, train, val).path
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:-20])
    elif damage == "not a zip":
        path.write_text("features")
    else:
        with np.load(path) as archive:
            np.savez(path, **{**archive, "key": np.array("0" * 64)})
    again = feature_sets(backend, train, val)
    assert not again.loaded and backend.computed == 2 * 7
    assert str(path) in capsys.readouterr().err
    assert feature_sets(backend, train, val).loaded, "the recomputed file must be whole again"



def test_a_resumed_run_may_turn_the_cache_off(tmp_path):
    """--no-feature-cache changes only the speed, so --resume takes it."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    plan = plan_from_args(build_parser("train").parse_args(["--experiment", "flowers-resnet18"]))
    rundir.write_json(run_dir / rundir.RUN, plan.to_json("torch"))
    argv = ["--resume", str(run_dir), "--out", str(tmp_path / "continued"), "--no-feature-cache"]
    job = plan_resume(build_parser("train").parse_args(argv), argv, "torch")
    assert plan.config.feature_cache and not job.plan.config.feature_cache
