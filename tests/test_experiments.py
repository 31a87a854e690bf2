"""Every lab end to end in each backend at small sizes, from files in the real formats: an image folder of JPEGs
and PNGs, the CIFAR-100 python archive, a torchvision ResNet-18 checkpoint."""

import pytest

from tests.support import helpers


@pytest.fixture(scope="module")
def runs(backend, tmp_path_factory):
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield helpers.run_every_experiment(backend.framework, backend, tmp_path_factory.mktemp("labs"), monkeypatch)


def test_flowers_baseline_trains_and_reports(backend, runs):
    helpers.check_flowers_run(runs, backend.framework, backend.checkpoint_name)


def test_resnet18_fine_tuning_trains_only_the_head_from_the_checkpoint(backend, runs):
    helpers.check_fine_tuning_run(runs, backend.framework, backend.checkpoint_name)


def test_pooling_study_compares_three_variants_and_keeps_the_best(backend, runs):
    helpers.check_pooling_study(runs, backend.framework, backend.checkpoint_name)


def test_a_fresh_load_reproduces_the_validation_accuracy(backend, runs, monkeypatch, capsys):
    helpers.check_fresh_loads_reproduce(runs, backend.framework, backend, monkeypatch, capsys)


def test_evaluate_uses_the_recorded_split_when_the_folder_gained_images(backend, runs, monkeypatch, capsys):
    """Images added after training must not move into the validation set: evaluate loads the recorded validation
    files, says the folder changed, and still reproduces the accuracy. (Last in this module: it changes the data.)"""
    import shutil

    from shared.commands.evaluate import main as evaluate

    monkeypatch.setenv("CNNLAB_HOME", str(runs["flowers"].parent.parent / "home"))
    folder = runs["flowers"].parent.parent / "flowers"
    for class_folder in [path for path in folder.iterdir() if path.is_dir() and not path.name.startswith(".")]:
        for index, image in enumerate(sorted(class_folder.glob("*.jpg"))[:2]):
            shutil.copy(image, class_folder / f"added_{index}.jpg")
    assert evaluate(backend.framework, lambda: backend, [str(runs["flowers"])]) == 0
    captured = capsys.readouterr()
    assert "the data folder changed since training" in captured.err and ": reproduced" in captured.out
