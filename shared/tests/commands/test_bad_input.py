"""Bad input to the experiments: one line naming what was wrong and what to do, exit status 2, no traceback, and no
run directory (or cache) left behind. Most checks come before a framework is imported, so these run quickly."""

import subprocess
import sys

import pytest

from shared.model.init import initial_weights
from shared.model.registry import build_spec
from tests.support.helpers import write_cifar100_archive, write_image_folder
from shared.formats.weights_io import save_weights

ENTRY_POINTS = ["cnnlab_torch.train", "cnnlab_tf.train"]


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty cnnlab and torch cache: the run is offline with nothing downloaded."""
    monkeypatch.setenv("CNNLAB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    return tmp_path / "home"


def refuse(module, tmp_path, *flags) -> str:
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", module, *flags, "--out", str(out)], capture_output=True,
                            text=True, timeout=300)
    lines = [line for line in result.stderr.splitlines() if line.startswith(module)]
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and len(lines) == 1, result.stderr
    assert not out.exists(), "a refused run must not leave a run directory"
    return lines[0]


@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_missing_data_folder(module, tmp_path, home):
    line = refuse(module, tmp_path, "--experiment", "flowers", "--data", str(tmp_path / "nowhere"))
    assert f"data folder {tmp_path / 'nowhere'} does not exist" in line and "--download" in line


def test_empty_data_folder(tmp_path, home):
    (tmp_path / "empty").mkdir()
    assert "has no class subfolders" in refuse("cnnlab_torch.train", tmp_path, "--experiment", "flowers", "--data",
                                               str(tmp_path / "empty"))


def test_class_folder_without_images(tmp_path, home):
    folder = write_image_folder(tmp_path / "flowers", per_class=2)
    (folder / "sunflower").mkdir()
    (folder / "sunflower" / "notes.txt").write_text("no images here")
    line = refuse("cnnlab_torch.train", tmp_path, "--experiment", "flowers", "--data", str(folder))
    assert f"class folder {folder / 'sunflower'} has no images" in line
    assert not (home / "decoded").exists() or not list((home / "decoded").iterdir()), "no half-written cache"


@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_unknown_class_name(module, tmp_path, home):
    archive = write_cifar100_archive(tmp_path / "cifar-100-python.tar.gz", 1, 1)
    line = refuse(module, tmp_path, "--experiment", "cifar100-pooling", "--data", str(archive), "--classes",
                  "apple,oragne")
    assert "'oragne' is not a CIFAR-100 class; did you mean orange" in line


def test_offline_without_cifar_data(tmp_path, home):
    line = refuse("cnnlab_torch.train", tmp_path, "--experiment", "cifar100-pooling")
    assert "no CIFAR-100 archive at" in line and "--download" in line and "--data" in line


def test_offline_without_imagenet_weights_says_where_to_put_them(tmp_path, home):
    folder = write_image_folder(tmp_path / "flowers", per_class=2)
    line = refuse("cnnlab_torch.train", tmp_path, "--experiment", "flowers-resnet18", "--data", str(folder),
                  "--image-size", "32")
    assert "Put resnet18-f37072fd.pth" in line and str(home / "weights" / "resnet18-f37072fd.pth") in line


@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_weights_for_another_architecture(module, tmp_path, home):
    folder = write_image_folder(tmp_path / "flowers", per_class=2)
    spec = build_spec("cifar_cnn_max", 3, 32)
    weights = save_weights(tmp_path / "cifar.npz", spec, initial_weights(spec, 0))
    line = refuse(module, tmp_path, "--experiment", "flowers-resnet18", "--data", str(folder), "--image-size", "32",
                  "--weights", str(weights))
    assert "holds weights for cifar_cnn_max" in line and "resnet18" in line


def test_arch_flag_with_an_experiment_that_fixes_it(tmp_path, home):
    line = refuse("cnnlab_torch.train", tmp_path, "--experiment", "flowers-resnet18", "--arch", "mobilenet_v2")
    assert "--experiment flowers-resnet18 trains resnet18" in line and "digits, flowers" in line
