"""Every lab end to end in the TensorFlow backend at small sizes, from files in the real formats: an image folder
of JPEGs and PNGs, the CIFAR-100 python archive, a torchvision ResNet-18 checkpoint."""

import json

import numpy as np
import pytest

from cnnlab_tf.backend import BACKEND
from shared.evaluate import main as evaluate
from shared.registry import build_spec
from shared.testing import check_lab_artefacts, check_run_directory, run_every_experiment
from shared.weights_io import load_weights, read_meta


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield run_every_experiment("tf", BACKEND, tmp_path_factory.mktemp("labs"), monkeypatch)


def test_flowers_baseline_trains_and_reports(runs):
    check_run_directory(runs["flowers"], "tf", "model.keras", epochs=2)
    check_lab_artefacts(runs["flowers"])
    assert runs["metrics"]["flowers"]["classes"] == ["daisy", "rose", "tulip"]


def test_resnet18_fine_tuning_trains_only_the_head_from_the_checkpoint(runs):
    run = runs["flowers-resnet18"]
    metrics = check_run_directory(run, "tf", "model.keras", epochs=1)
    check_lab_artefacts(run)
    assert metrics["trainable"] == ["fc.weight", "fc.bias"]
    assert metrics["params_trainable"] == 512 * 3 + 3, "a 3-class head on 512 features, by hand"
    # The frozen backbone, BatchNorm statistics included, still holds the checkpoint's values after training.
    ported = next((run.parent.parent / "home" / "weights").glob("resnet18-test-*.npz"))
    start = load_weights(ported, build_spec("resnet18", 1000, 224))
    trained = np.load(run / "weights.npz")
    for name in ("conv1.weight", "layer4.1.bn2.running_var", "layer2.0.downsample.1.running_mean"):
        assert np.array_equal(trained[name], start[name]), f"{name} changed in a frozen backbone"
    assert not np.allclose(trained["fc.weight"], 0) and read_meta(run / "weights.npz")["classes"] == 3


def test_pooling_study_compares_three_variants_and_keeps_the_best(runs):
    study = runs["cifar100-pooling"]
    for variant in ("cifar_cnn_stride", "cifar_cnn_max", "cifar_cnn_avg"):
        metrics = check_run_directory(study / variant, "tf", "model.keras", epochs=2)
        assert metrics["params_trainable"] == 21_699, "3 classes: 2432 + 18496 + 771, as the lab states"
    table = (study / "comparison.md").read_text()
    assert "**(best)**" in table and "chosen by" in table
    best = json.loads((study / "comparison.json").read_text())["best"]
    assert read_meta(study / "best" / "weights.npz")["arch"] == best
    assert (study / "best" / "model.onnx").is_file() and (study / "best" / "model.keras").is_file()


def test_a_fresh_load_reproduces_the_validation_accuracy(runs, monkeypatch, capsys):
    monkeypatch.setenv("CNNLAB_HOME", str(runs["flowers"].parent.parent / "home"))
    for experiment in ("cifar100-pooling", "flowers-resnet18"):
        assert evaluate("tf", lambda: BACKEND, [str(runs[experiment])]) == 0
        assert evaluate("tf", lambda: BACKEND, [str(runs[experiment]), "--neutral"]) == 0
    assert capsys.readouterr().out.count(": reproduced") == 4
