"""Resuming in the same framework is exact: a run stopped after any epoch (by Ctrl-C, SIGTERM or SIGKILL) and
resumed ends bit for bit where the uninterrupted run ends, weights, BatchNorm statistics and Adam state included.
Planted bugs (a lost moment, a step count reset to zero, a batch order that starts over) must break that."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from shared.formats import checkpoints, rundir
from shared.commands.train import main
from shared.formats.optimizer_state import OptimizerState
from tests.support.helpers import (overriding, default_run, differences, final_state, interrupting_backend, train,
                                   write_cifar100_archive)

EPOCHS = 3


@pytest.fixture(scope="module")
def straight(backend, tmp_path_factory) -> Path:
    """The uninterrupted reference run: the default experiment for EPOCHS epochs."""
    return default_run(backend, tmp_path_factory.mktemp("straight") / "run", EPOCHS)


def stopped_after(backend, epoch: int, run_dir: Path) -> Path:
    assert train(interrupting_backend(backend, after_epoch=epoch), ["--epochs", str(EPOCHS), "--out",
                                                                    str(run_dir)]) == 130
    assert checkpoints.latest(run_dir).epoch == epoch
    return run_dir


def test_resume_in_place_is_bit_exact(backend, straight, tmp_path):
    run_dir = stopped_after(backend, 1, tmp_path / "run")
    assert train(backend, ["--resume", str(run_dir)]) == 0
    assert differences(final_state(run_dir), final_state(straight)) == []
    resumed, reference = (rundir.read_json(path / rundir.METRICS) for path in (run_dir, straight))
    assert resumed["status"] == "complete" and [r["epoch"] for r in resumed["history"]] == [1, 2, 3]
    for key in ("train_loss", "val_loss", "val_acc"):
        assert [r[key] for r in resumed["history"]] == [r[key] for r in reference["history"]], key
    assert resumed["resumes"][0]["from_epoch"] == 1
    assert final_state(run_dir)[f"{rundir.OPTIMIZER}:__cnnlab__"] is not None
    step = json.loads(str(final_state(run_dir)[f"{rundir.OPTIMIZER}:__cnnlab__"]))["step"]
    assert step == EPOCHS * 45, "45 steps per epoch: 1438 training digits in batches of 32"


def test_extending_a_finished_run_equals_a_longer_run(backend, straight, tmp_path):
    run_dir = tmp_path / "run"
    assert train(backend, ["--epochs", "2", "--out", str(run_dir)]) == 0
    assert train(backend, ["--resume", str(run_dir), "--epochs", str(EPOCHS)]) == 0
    assert differences(final_state(run_dir), final_state(straight)) == []
    assert (run_dir / rundir.ONNX).is_file() and rundir.read_json(run_dir / rundir.METRICS)["config"]["epochs"] == 3


def test_resume_from_the_neutral_files_is_exact_too(backend, straight, tmp_path):
    """Continuing into a new directory from the neutral weights and Adam state (the path the other framework
    takes) loses nothing either: layout permutations are exact."""
    run_dir = stopped_after(backend, 2, tmp_path / "run")
    as_if_other = overriding(backend, framework=f"not-{backend.framework}")  # forces the neutral files
    folder = checkpoints.latest(run_dir).folder
    state = json.loads((folder / rundir.STATE).read_text())
    (folder / rundir.STATE).write_text(json.dumps({**state, "framework": as_if_other.framework}))
    checkpoints.write_manifest(folder)  # the edit stands for the other framework's own checkpoint
    assert train(backend, ["--resume", str(run_dir), "--out", str(tmp_path / "continued")]) == 0
    assert differences(final_state(tmp_path / "continued"), final_state(straight)) == []
    metrics = rundir.read_json(tmp_path / "continued" / rundir.METRICS)
    assert metrics["resumed_from"]["epoch"] == 2 and len(metrics["history"]) == EPOCHS
    assert "neutral" in metrics["resumes"][0]["loaded"]


def planted(backend, bug: str):
    """The backend with one resume bug planted."""
    def set_state(model, spec, optimizer, state: OptimizerState):
        if bug == "lost moment":
            name = next(iter(state.moments))
            state.moments[name] = (np.zeros_like(state.moments[name][0]), state.moments[name][1])
        if bug == "step reset":
            state = OptimizerState(0, state.moments)
        backend.set_optimizer_state(model, spec, optimizer, state)

    def fit(model, optimizer, train_set, val, config, on_epoch_end, first_epoch=1, **options):
        if bug == "batch order starts over":  # the right number of epochs, numbered (and shuffled) from 1 again
            shift = first_epoch - 1

            def renumber(record):
                on_epoch_end({**record, "epoch": record["epoch"] + shift})

            return backend.fit(model, optimizer, train_set, val, dataclasses.replace(config, epochs=config.epochs - shift),
                               renumber, 1)
        return backend.fit(model, optimizer, train_set, val, config, on_epoch_end, first_epoch, **options)

    return overriding(backend, framework=f"planted-{backend.framework}", set_optimizer_state=set_state,
                               fit=fit)


@pytest.mark.parametrize("bug", ["lost moment", "step reset", "batch order starts over"])
def test_the_exactness_check_catches_planted_resume_bugs(backend, straight, tmp_path, bug):
    run_dir = stopped_after(backend, 1, tmp_path / "run")
    buggy = planted(backend, bug)  # another framework name: it resumes from the neutral files, into --out
    assert main(backend.framework, lambda: buggy, ["--resume", str(run_dir), "--out", str(tmp_path / "b")]) == 0
    assert differences(final_state(tmp_path / "b"), final_state(straight)), f"{bug} went unnoticed"


def test_stopped_before_the_first_epoch_finished_resumes_from_the_start(backend, straight, tmp_path, capsys):
    def stop_at_once(model, optimizer, train_set, val, config, on_epoch_end, first_epoch=1, **options):
        raise KeyboardInterrupt

    run_dir = tmp_path / "run"
    assert train(overriding(backend, fit=stop_at_once), ["--epochs", str(EPOCHS), "--out",
                                                                  str(run_dir)]) == 130
    assert "before any epoch finished" in capsys.readouterr().err
    assert train(backend, ["--resume", str(run_dir)]) == 0
    assert differences(final_state(run_dir), final_state(straight)) == []


def test_a_diverging_run_stops_at_once_and_keeps_its_last_finished_epoch(backend, tmp_path, capsys):
    """After epoch 1 a weight turns NaN (as a too-large step would make it): epoch 2's first loss is NaN."""
    def fit(model, optimizer, train_set, val, config, on_epoch_end, first_epoch=1, **options):
        def save_then_poison(record):
            on_epoch_end(record)
            weights = backend.get_weights(model, spec)
            weights["fc.bias"] = np.full_like(weights["fc.bias"], np.nan)
            backend.set_weights(model, spec, weights)

        return backend.fit(model, optimizer, train_set, val, config, save_then_poison, first_epoch, **options)

    from shared.model.registry import build_spec
    spec = build_spec("cifar_cnn_max", 10, 32)
    run_dir = tmp_path / "run"
    assert train(overriding(backend, fit=fit), ["--epochs", "3", "--out", str(run_dir)]) == 3
    err = capsys.readouterr().err
    assert "diverged: the loss became nan at epoch 2, batch 1 of 45" in err and "lower --lr" in err
    metrics = json.loads((run_dir / rundir.METRICS).read_text())  # strict JSON: no bare NaN
    assert metrics["status"] == "diverged" and len(metrics["history"]) == 1
    assert checkpoints.latest(run_dir).epoch == 1 and not (run_dir / rundir.ONNX).exists()
    assert (run_dir / rundir.CURVES).is_file(), "a diverged run draws the curves of its finished epochs"
    assert train(backend, ["--resume", str(run_dir)]) == 2, "a diverged run is not resumed as it is"


def test_a_pooling_study_resumes_at_the_variant_and_epoch_where_it_stopped(backend, tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLAB_HOME", str(tmp_path / "home"))
    archive = write_cifar100_archive(tmp_path / "cifar-100-python.tar.gz", 6, 2)
    flags = ["--experiment", "cifar100-pooling", "--data", str(archive), "--epochs", "2"]
    calls = []

    def stop_in_second_variant(model, optimizer, train_set, val, config, on_epoch_end, first_epoch=1, **options):
        calls.append(config.arch)
        fit = interrupting_backend(backend, after_epoch=1).fit if len(calls) == 2 else backend.fit
        return fit(model, optimizer, train_set, val, config, on_epoch_end, first_epoch, **options)

    study = tmp_path / "study"
    assert train(overriding(backend, fit=stop_in_second_variant), [*flags, "--out", str(study)]) == 130
    first = (study / "cifar_cnn_stride" / rundir.METRICS).read_text()
    assert train(backend, ["--resume", str(study)]) == 0
    assert (study / "cifar_cnn_stride" / rundir.METRICS).read_text() == first, "a finished variant is kept"
    resumed = rundir.read_json(study / "cifar_cnn_max" / rundir.METRICS)
    assert resumed["resumes"][0]["from_epoch"] == 1 and len(resumed["history"]) == 2
    assert rundir.read_json(study / "cifar_cnn_avg" / rundir.METRICS)["status"] == "complete"
    assert (study / "comparison.md").is_file() and (study / rundir.BEST / rundir.ONNX).is_file()
    (study / "comparison.json").unlink()  # as a full disk leaves it: every arm complete, the table not written
    assert train(backend, ["--resume", str(study)]) == 0 and (study / "comparison.json").is_file()

    reference = tmp_path / "reference"
    assert train(backend, [*flags, "--out", str(reference)]) == 0
    assert differences(final_state(study / "cifar_cnn_max"), final_state(reference / "cifar_cnn_max")) == []


CHAOS_KILLS = int(os.environ.get("CNNLAB_CHAOS_KILLS", "2"))  # more, for a longer hunt: CNNLAB_CHAOS_KILLS=20


def chaos_markers(run_dir: Path) -> list[str]:
    """Where a kill may land: a random moment after one of these appears in the child's output. "" is the start;
    then each epoch still to train (its progress bar), and the classification report printed after the export."""
    done = checkpoints.latest(run_dir).epoch if checkpoints.latest(run_dir) else 0
    return ["", *(f"epoch {epoch}/" for epoch in range(done + 1, EPOCHS + 1)), "precision"]


def signal_at_random(process: subprocess.Popen, log: Path, rng, markers: list[str]) -> str:
    """Wait for a randomly chosen marker in ``log``, then a random fraction of a second, then a random signal;
    what was done, for the failure message. Nothing when the child ends first."""
    marker, extra, how = rng.choice(markers), rng.uniform(0.0, 0.5), rng.choice([signal.SIGKILL, signal.SIGTERM])
    deadline = time.monotonic() + 300
    while marker not in log.read_text(errors="replace") and process.poll() is None:
        assert time.monotonic() < deadline, f"{marker!r} never came: {log.read_text()[-2000:]}"
        time.sleep(0.02)
    time.sleep(extra)
    if process.poll() is not None:
        return f"ended before {how.name} at {marker!r}+{extra:.2f}s"
    process.send_signal(how)
    return f"{how.name} at {marker!r}+{extra:.2f}s"


def test_a_run_killed_at_random_moments_resumes_exactly(backend, straight, tmp_path):
    """The command is started and killed at a random moment (SIGKILL or SIGTERM: during start-up, mid-epoch, right
    after a checkpoint, while exporting), CHAOS_KILLS times, each time continued with --resume (or started again
    when no run directory was kept); then it runs to the end. It must end bit for bit where the straight run ends,
    and after every kill the run directory must be consistent: no status "running" once the process is gone, and
    no damaged checkpoint."""
    import random

    seed = random.randrange(2**32)
    rng = random.Random(seed)
    run_dir, moments = tmp_path / "run", []
    command = [sys.executable, "-m", f"cnnlab_{backend.framework}.train"]
    fresh, resume = [*command, "--epochs", str(EPOCHS), "--out", str(run_dir)], [*command, "--resume", str(run_dir)]
    for attempt in range(CHAOS_KILLS):
        log = tmp_path / f"attempt-{attempt}.log"  # a file: a full pipe would stall the child
        process = subprocess.Popen(resume if (run_dir / rundir.RUN).is_file() else fresh, stdout=log.open("w"),
                                   stderr=subprocess.STDOUT)
        try:
            moments.append(signal_at_random(process, log, rng, chaos_markers(run_dir)))
            status = process.wait(timeout=60)
        finally:
            process.kill()
        context = f"seed {seed}: {moments}, exit {status}; {log.read_text()[-2000:]}"
        # -SIGTERM: the signal came before Python had started the program, which had written nothing yet
        assert status in (0, -signal.SIGKILL, -signal.SIGTERM, 143), context
        if (run_dir / rundir.METRICS).is_file():  # "running" only as a SIGKILLed process leaves it: readers see
            assert rundir.effective_status(rundir.read_json(run_dir / rundir.METRICS)) != "running", context
        assert checkpoints.intact(run_dir)[1] == [], context
        if status == 0:
            break
    if status != 0:
        result = subprocess.run(resume if (run_dir / rundir.RUN).is_file() else fresh, capture_output=True,
                                text=True, timeout=600)
        assert result.returncode == 0, f"seed {seed}: {moments}; {result.stderr[-3000:]}"
    assert rundir.read_json(run_dir / rundir.METRICS)["status"] == "complete"
    assert differences(final_state(run_dir), final_state(straight)) == [], f"seed {seed}: {moments}"
