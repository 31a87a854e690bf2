"""The neutral weights file: round trip, atomic writes and the user-facing errors."""

import numpy as np
import pytest

from shared.model.init import initial_weights
from shared.model.registry import build_spec
from shared.formats.weights_io import WeightsError, load_weights, read_meta, save_weights


def test_round_trip_keeps_every_array(tmp_path):
    spec = build_spec("cifar_cnn_avg", 4, 32)
    weights = initial_weights(spec, seed=5)
    save_weights(tmp_path / "w.npz", spec, weights)
    loaded = load_weights(tmp_path / "w.npz", spec)
    assert loaded.keys() == weights.keys()
    assert all(np.array_equal(loaded[name], weights[name]) for name in weights)
    assert read_meta(tmp_path / "w.npz") == {"format_version": 1, "arch": "cifar_cnn_avg", "classes": 4,
                                             "image_size": 32}
    assert [path.name for path in tmp_path.iterdir()] == ["w.npz"], "no temporary file left behind"


def test_weights_for_another_architecture_are_refused_by_name(tmp_path):
    small = build_spec("cifar_cnn_max", 10, 32)
    save_weights(tmp_path / "w.npz", small, initial_weights(small, 0))
    with pytest.raises(WeightsError, match="cifar_cnn_max with 10 classes.*model is resnet18"):
        load_weights(tmp_path / "w.npz", build_spec("resnet18", 10, 32))


def test_missing_and_foreign_files_get_a_message(tmp_path):
    spec = build_spec("cifar_cnn_max", 10, 32)
    with pytest.raises(WeightsError, match="does not exist"):
        load_weights(tmp_path / "absent.npz", spec)
    np.savez(tmp_path / "foreign.npz", x=np.zeros(3))
    with pytest.raises(WeightsError, match="not written by cnnlab"):
        load_weights(tmp_path / "foreign.npz", spec)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(WeightsError, match="junk.npz cannot be read as a cnnlab .npz weights file"):
        load_weights(tmp_path / "junk.npz", spec)


@pytest.mark.parametrize("keep", [0.5, 0.99])
def test_a_truncated_weights_file_is_one_message(tmp_path, keep):
    """Cut inside the arrays and inside the zip's directory at the end: numpy raises different errors for each."""
    spec = build_spec("cifar_cnn_max", 10, 32)
    path = save_weights(tmp_path / "weights.npz", spec, initial_weights(spec, 0))
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])
    with pytest.raises(WeightsError, match="damaged or truncated"):
        load_weights(path, spec)


def test_incomplete_weights_are_not_written(tmp_path):
    spec = build_spec("cifar_cnn_max", 10, 32)
    weights = initial_weights(spec, 0)
    del weights["fc.bias"]
    with pytest.raises(WeightsError, match="missing \\['fc.bias'\\]"):
        save_weights(tmp_path / "w.npz", spec, weights)
    assert not list(tmp_path.iterdir())
