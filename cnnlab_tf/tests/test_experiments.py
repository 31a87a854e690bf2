"""Every lab end to end in the TensorFlow backend at small sizes, from files in the real formats: an image folder
of JPEGs and PNGs, the CIFAR-100 python archive, a torchvision ResNet-18 checkpoint. The checks live in
``shared.testing``, so both backends are held to the same ones."""

import pytest

from cnnlab_tf.backend import BACKEND
from shared import testing


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield testing.run_every_experiment("tf", BACKEND, tmp_path_factory.mktemp("labs"), monkeypatch)


def test_flowers_baseline_trains_and_reports(runs):
    testing.check_flowers_run(runs, "tf", "model.keras")


def test_resnet18_fine_tuning_trains_only_the_head_from_the_checkpoint(runs):
    testing.check_fine_tuning_run(runs, "tf", "model.keras")


def test_pooling_study_compares_three_variants_and_keeps_the_best(runs):
    testing.check_pooling_study(runs, "tf", "model.keras")


def test_a_fresh_load_reproduces_the_validation_accuracy(runs, monkeypatch, capsys):
    testing.check_fresh_loads_reproduce(runs, "tf", BACKEND, monkeypatch, capsys)
