"""The Python API, ``cnnlab_torch.train(...)`` and ``cnnlab_tf.train(...)``: the command line's flags as keywords, a
``Run`` back with the trained model, and one exception type for every mistake."""

import importlib
import json

import numpy as np
import pytest

from shared.commands import api
from shared.formats import rundir
from shared.data.dataset import Split, load_digits_rgb
from shared.util.errors import UsageError
from shared.training.metrics import accuracy
from shared.model.registry import build_spec
from tests.support.helpers import overriding, interrupting_backend, write_cifar100_archive


def package(backend):
    return importlib.import_module(f"cnnlab_{backend.framework}")


def test_train_returns_the_run_with_its_metrics_and_trained_model(backend, tmp_path):
    run = package(backend).train(epochs=1, batch_size=64, out=tmp_path / "run")
    assert run.path == tmp_path / "run" and run.status == "complete" and run.exit_status == 0
    assert run.metrics == json.loads((run.path / rundir.METRICS).read_text())
    assert run.metrics["config"]["batch_size"] == 64 and run.metrics["config"]["epochs"] == 1
    assert backend.count_trainable(run.model) == 23_498, "cifar_cnn_max on the 10 digits, by hand: 2432+18496+2570"
    # The returned model is the trained one: it scores the validation accuracy the run recorded.
    val = Split.from_json(rundir.read_split(run.path)).val
    digits = load_digits_rgb()
    logits = backend.predict_logits(run.model, digits.images[val], 64)
    assert accuracy(logits, digits.labels[val]) == pytest.approx(run.metrics["history"][-1]["val_acc"], abs=1e-9)
    # evaluate reloads it from its checkpoint, in a model of its own, and finds the same accuracy on the same images
    evaluation = package(backend).evaluate(run)
    assert evaluation.reproduced and not evaluation.data_changed and evaluation.images == len(val)
    assert evaluation.accuracy == evaluation.recorded == run.metrics["history"][-1]["val_acc"]


@pytest.mark.parametrize("options, words", [
    (dict(epoch=3), ["no option 'epoch'", "did you mean epochs?"]),
    (dict(epochs=0), ["--epochs", "'0'", "positive"]),
    (dict(arch="vgg"), ["'vgg' is not one of", "cifar_cnn_max"]),
    (dict(download="yes"), ["download must be True or False", "'yes'"]),
    (dict(classes=["apple", "oragne"], experiment="cifar100-pooling"),
     ["'oragne' is not a CIFAR-100 class", "did you mean orange"]),
], ids=["unknown-keyword", "zero-epochs", "unknown-arch", "non-bool-switch", "unknown-class"])
def test_every_mistake_raises_one_exception_type_and_writes_nothing(options, words, tmp_path, monkeypatch):
    import cnnlab_torch

    monkeypatch.setenv("CNNLAB_HOME", str(tmp_path / "home"))
    write_cifar100_archive(tmp_path / "home" / "cifar-100-python.tar.gz")
    with pytest.raises(UsageError) as raised:
        cnnlab_torch.train(out=tmp_path / "run", **options)
    for word in words:
        assert word in str(raised.value), str(raised.value)
    assert not (tmp_path / "run").exists()


def test_keywords_become_the_command_lines_flags():
    parser = api.build_parser("cnnlab_torch.train")
    argv = api.to_argv(parser, dict(experiment="cifar100-pooling", classes=("apple", "pear"), batch_size=8,
                                    compile=True, download=False, feature_cache=False, seed=None))
    assert argv == ["--experiment", "cifar100-pooling", "--classes", "apple,pear", "--batch-size", "8", "--compile",
                    "--no-feature-cache"]


def test_the_module_stays_callable_after_python_imports_it(tmp_path):
    import cnnlab_tf
    import cnnlab_tf.evaluate
    import cnnlab_tf.train
    import cnnlab_torch
    import cnnlab_torch.evaluate
    import cnnlab_torch.train

    for function in (cnnlab_torch.train, cnnlab_tf.train):
        with pytest.raises(UsageError, match="no option 'epoch'"):
            function(epoch=1)
    for function in (cnnlab_torch.evaluate, cnnlab_tf.evaluate):
        with pytest.raises(UsageError, match="no-such-run"):
            function(tmp_path / "no-such-run")


def test_an_interrupted_run_comes_back_marked_with_its_finished_epochs(backend, tmp_path):
    run = api.train(backend.framework, lambda: interrupting_backend(backend), epochs=3, out=tmp_path / "run")
    assert run.status == "interrupted" and run.exit_status == 130
    assert len(run.metrics["history"]) == 1 and (run.path / backend.checkpoint_name).is_file()


def test_a_study_returns_its_table_and_the_best_arms_model(tmp_path, monkeypatch):
    import cnnlab_torch

    monkeypatch.setenv("CNNLAB_HOME", str(tmp_path / "home"))
    archive = write_cifar100_archive(tmp_path / "cifar-100-python.tar.gz")
    run = cnnlab_torch.train(experiment="cifar100-pooling", data=archive, epochs=1, out=tmp_path / "study")
    table = json.loads((run.path / f"{rundir.COMPARISON}.json").read_text())
    assert run.status == "complete" and run.metrics == table
    best = rundir.read_json(run.path / table["best"] / rundir.METRICS)
    assert run.model is not None and best["arch"] == table["variants"][table["best"]]["arch"]
    images = np.zeros((2, 32, 32, 3), np.uint8)
    assert cnnlab_torch.load_backend().predict_logits(run.model, images, 2).shape == (2, 3)


def test_a_resumed_study_returns_the_best_arm_even_when_it_finished_before(backend, tmp_path, monkeypatch):
    """Stopped in the last pooling variant and resumed: the best arm finished in the process that stopped, and the
    Run loads it from its checkpoint."""
    monkeypatch.setenv("CNNLAB_HOME", str(tmp_path / "home"))
    archive = write_cifar100_archive(tmp_path / "cifar-100-python.tar.gz")
    calls = []

    def recording(stop_at: int | None):
        def fit(model, optimizer, train_set, val, config, on_epoch_end, first_epoch=1, **options):
            calls.append(config.arch)
            run = interrupting_backend(backend).fit if len(calls) == stop_at else backend.fit
            return run(model, optimizer, train_set, val, config, on_epoch_end, first_epoch, **options)
        return overriding(backend, fit=fit)

    study = tmp_path / "study"
    stopped = api.train(backend.framework, lambda: recording(stop_at=3), experiment="cifar100-pooling",
                        data=archive, epochs=2, out=study)
    assert stopped.status == "interrupted" and stopped.metrics["arch"] == "cifar_cnn_avg"
    calls.clear()
    resumed = api.train(backend.framework, lambda: recording(stop_at=None), resume=study)
    best = resumed.metrics["best"]
    assert resumed.status == "complete" and calls == ["cifar_cnn_avg"]
    assert best != "cifar_cnn_avg", "the fixture's best arm must be one the resumed process did not train"
    images = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3)).astype(np.uint8)
    reference = backend.build_model(build_spec(resumed.metrics["variants"][best]["arch"], 3, 32))
    backend.load_checkpoint(reference, study / best / backend.checkpoint_name)
    assert np.array_equal(backend.predict_logits(resumed.model, images, 4),
                          backend.predict_logits(reference, images, 4))
