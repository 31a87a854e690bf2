"""The feature cache of flowers-resnet18 end to end, in each backend: training the head on cached backbone features
gives the run that pushes every image through the frozen backbone every epoch; later runs, resumed ones included,
read the cache; a damaged cache file is computed again. (``shared/tests/run/test_feature_cache.py`` checks the key and
when the cache applies.)"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from shared.run.experiments import DataOptions, prepare_data
from shared.model.init import initial_weights
from shared.formats.onnx_check import onnx_logits
from shared.model.registry import build_spec
from shared.commands.train import main
from shared.formats.tolerances import compare
from tests.support.helpers import check_run_directory, write_image_folder, write_torchvision_checkpoint

EPOCHS = 2
BATCH_SIZE = 4  # several steps per epoch, each on a shuffled batch gathered from the features


@pytest.fixture(scope="module")
def lab(backend, tmp_path_factory):
    """An image folder, a ResNet-18 checkpoint and an empty $CNNLAB_HOME, shared by this module's runs."""
    root = tmp_path_factory.mktemp("feature-cache")
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("CNNLAB_HOME", str(root / "home"))
        yield {"root": root, "folder": write_image_folder(root / "flowers", per_class=6),
               "checkpoint": write_torchvision_checkpoint(root / "resnet18-test.pth")}


def train(backend, lab: dict, out: str, *flags: str) -> Path:
    run_dir = lab["root"] / "runs" / out
    argv = ["--experiment", "flowers-resnet18", "--data", str(lab["folder"]), "--image-size", "32", "--weights",
            str(lab["checkpoint"]), "--batch-size", str(BATCH_SIZE), "--out", str(run_dir), *flags]
    assert main(backend.framework, lambda: backend, argv) == 0
    return run_dir


def cache_files(backend, lab: dict) -> list[Path]:
    return sorted((lab["root"] / "home" / "features").glob(f"{backend.framework}-*.npz"))


def metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


@pytest.fixture(scope="module")
def cached(backend, lab) -> Path:
    """The first cached run: it computes the features."""
    return train(backend, lab, "cached", "--epochs", str(EPOCHS))


@pytest.fixture(scope="module")
def uncached(backend, lab) -> Path:
    return train(backend, lab, "uncached", "--epochs", str(EPOCHS), "--no-feature-cache")


def test_cached_and_uncached_runs_train_the_same_head(backend, cached, uncached):
    assert metrics(cached)["feature_cache"] is True and metrics(cached)["feature_cache_hit"] is False
    assert metrics(uncached)["feature_cache"] is False and "feature_cache_hit" not in metrics(uncached)
    for run_dir in (cached, uncached):
        check_run_directory(run_dir, backend.framework, backend.checkpoint_name, epochs=EPOCHS)
    with_cache, without = np.load(cached / "weights.npz"), np.load(uncached / "weights.npz")
    start = initial_weights(build_spec("resnet18", 3, 32), seed=0)["fc.weight"]
    assert not np.allclose(with_cache["fc.weight"], start), "the head did not train on the cached features"
    for name in ("fc.weight", "fc.bias"):
        within, difference, bound = compare(with_cache[name], without[name], "same_weights")
        assert within, f"{name}: cached and uncached runs differ by {difference:.3g} (bound {bound:.3g})"
    # The exports are of the full model, images in: they hold the head trained on the features.
    data = metrics(cached)["data"]
    images = prepare_data(DataOptions.from_json(data)).val.images.astype(np.float32)
    within, difference, bound = compare(onnx_logits(cached / "model.onnx", images),
                                        onnx_logits(uncached / "model.onnx", images), "same_weights")
    assert within, f"validation logits of the cached and uncached runs differ by {difference:.3g} (bound {bound:.3g})"


def test_later_and_resumed_runs_load_the_features(backend, lab, cached, capsys):
    """A new run with the same data and weights reads the first run's file; so does the resumed run, which then
    ends bit for bit where the uninterrupted cached run ended."""
    files = cache_files(backend, lab)
    assert len(files) == 1, files
    run_dir = train(backend, lab, "later", "--epochs", "1")
    assert "loaded from the cache" in capsys.readouterr().out
    assert main(backend.framework, lambda: backend, ["--resume", str(run_dir), "--epochs", str(EPOCHS)]) == 0
    assert "loaded from the cache" in capsys.readouterr().out
    assert metrics(run_dir)["feature_cache_hit"] is True and cache_files(backend, lab) == files
    resumed, straight = np.load(run_dir / "weights.npz"), np.load(cached / "weights.npz")
    assert [name for name in straight.files if not np.array_equal(resumed[name], straight[name])] == []


def test_a_damaged_cache_file_is_computed_again(backend, lab, cached, capsys):
    """(Last in this module: it damages the cache file the other tests read.)"""
    damaged, = cache_files(backend, lab)
    damaged.write_bytes(damaged.read_bytes()[:200])
    run_dir = train(backend, lab, "after-damage", "--epochs", "1")
    captured = capsys.readouterr()
    assert f"{damaged} cannot be read" in captured.err and "computed and cached" in captured.out
    assert metrics(run_dir)["feature_cache_hit"] is False
    with np.load(damaged) as archive:  # written again, whole
        assert archive["train"].shape == (len(json.loads((run_dir / "split.json").read_text())["train"]), 512)
