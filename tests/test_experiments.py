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


def _validation_files(run):
    """The run's first few recorded validation images, as files in its data folder."""
    import json

    split = json.loads((run / "split.json").read_text())
    return [run.parent.parent / "flowers" / name for name in split["val_files"][:5]]


def test_predict_gives_the_run_s_own_probabilities_for_its_validation_images(backend, runs, monkeypatch, capsys):
    """predict decodes a user's files exactly as training decoded its folder: on the recorded validation images it
    returns the softmax of the trained model's logits on the validation set evaluate measures, through the command
    line and the API alike."""
    import importlib
    import json

    from shared.commands.predict import main as predict
    from shared.formats.predictions import softmax
    from shared.run.trained import load_trained
    from shared.formats import rundir
    from shared.run.experiments import recorded_validation

    monkeypatch.setenv("CNNLAB_HOME", str(runs["flowers"].parent.parent / "home"))
    run, files = runs["flowers"], _validation_files(runs["flowers"])
    assert predict(backend.framework, lambda: backend, [str(run), *map(str, files), "--json", "--top", "2"]) == 0
    captured = capsys.readouterr()
    records = [json.loads(line) for line in captured.out.splitlines()]
    assert "3 classes and 16 px input from its metrics.json" in captured.err  # it says what it chose

    metrics, split = rundir.read_finished_metrics(run, "test"), rundir.read_split(run)
    images, _, _ = recorded_validation(metrics, split)
    model = load_trained("test", backend.framework, backend, run, metrics).model
    expected = softmax(backend.predict_logits(model, images[:len(files)].astype("float32"), 8).astype("float64"))
    assert [record["image"] for record in records] == [str(file) for file in files]
    for record, row in zip(records, expected):
        best = row.argsort()[::-1][:2]
        assert [entry["index"] for entry in record["top"]] == list(best)
        assert [entry["label"] for entry in record["top"]] == [metrics["classes"][index] for index in best]
        assert [entry["probability"] for entry in record["top"]] == pytest.approx(list(row[best]), abs=1e-6)

    # The API, after ``python -m``'s module was imported too: that rebinds the package's name to the module, which
    # must still be the function (shared.commands.api.callable_module)
    importlib.import_module(f"cnnlab_{backend.framework}.predict")
    api = importlib.import_module(f"cnnlab_{backend.framework}").predict
    assert api(run, files, top=2) == records


def test_predict_refuses_an_unfinished_run_and_a_file_whose_run_has_another_size(backend, runs, tmp_path, capsys):
    """Two of predict's refusals that need a trained run: each is one line and exit status 2."""
    import json

    import numpy as np

    from shared.commands.predict import main as predict
    from shared.run.trained import load_trained
    from shared.training.backend import ExportOptions
    from shared.formats import rundir
    from shared.formats.exported import describe
    from tests.support.helpers import write_sidecar

    run, files = runs["flowers"], _validation_files(runs["flowers"])[:1]
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    metrics = json.loads((run / rundir.METRICS).read_text())
    (unfinished / rundir.METRICS).write_text(json.dumps({**metrics, "status": rundir.INTERRUPTED}))
    # The flowers run's model (16 px) exported, with a description that claims the 32 px fine-tuning run. ONNX, the
    # quickest export: the check is the same for a .tflite or .pte (shared.commands.predict._file_model)
    trained = load_trained("test", backend.framework, backend, run, metrics)
    exported = tmp_path / "model.onnx"
    backend.export("onnx", trained.model, trained.spec, exported, ExportOptions(np.zeros((1, 16, 16, 3), np.float32)))
    write_sidecar(exported, {**describe("onnx", backend.framework, metrics, run, "test", None, {}, exported),
                             "run": str(runs["flowers-resnet18"].resolve())})
    for model_path, message in [(unfinished, "is interrupted, not complete"),
                                (exported, "trained at 32 px; export that run again")]:
        assert predict(backend.framework, lambda: backend, [str(model_path), *map(str, files)]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and "Traceback" not in err, err


def test_evaluate_names_data_that_changed_since_training(backend, runs, capsys):
    """The CIFAR archive regenerated at the same path: evaluate on one arm said "reproduced" (a weak model scored
    the same on other images), and on the study "NOT reproduced" without a reason. The run's fingerprint of its
    validation images now names the cause, in both."""
    from shared.commands.evaluate import main as evaluate

    study = runs["cifar100-pooling"]
    archive = study.parent.parent / "cifar-100-python.tar.gz"
    original = archive.read_bytes()
    try:
        helpers.write_cifar100_archive(archive, 6, 2, seed=1)
        for target in (study / "cifar_cnn_max", study):
            assert evaluate(backend.framework, lambda: backend, [str(target)]) == 1, target
            out = capsys.readouterr().out
            assert "NOT reproduced: the data changed since training" in out, out
    finally:
        archive.write_bytes(original)


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
