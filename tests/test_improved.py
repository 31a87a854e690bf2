"""Lab 2's second task end to end in each backend: the baseline and improved arms from several seeds, the mean ±
std table with the gain, the arms' model files, the lab report, and exact resume under a cosine schedule."""

from __future__ import annotations

import statistics

import pytest

from shared.formats import rundir
from shared.commands.train import main
from tests.support.helpers import (overriding, check_run_directory, differences, final_state, interrupting_backend,
                                   write_cifar100_archive)

EPOCHS = 2


def train(backend, argv: list[str]) -> int:
    return main(backend.framework, lambda: backend, argv)


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    return write_cifar100_archive(tmp_path_factory.mktemp("data") / "cifar-100-python.tar.gz", 6, 2)


@pytest.fixture(scope="module")
def study(backend, archive, tmp_path_factory):
    """A two-seed study, as ``--repeats 2`` trains it."""
    root = tmp_path_factory.mktemp("improved")
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("CNNLAB_HOME", str(root / "home"))
        assert train(backend, ["--experiment", "cifar100-improved", "--data", str(archive), "--epochs", str(EPOCHS),
                               "--repeats", "2", "--out", str(root / "study")]) == 0
    return root / "study"


def test_each_arm_trains_from_each_seed_with_its_recipe(backend, study):
    for arm, arch, params in (("baseline", "cifar_cnn_avg", 21_699), ("improved", "cifar_improved", 76_041)):
        for seed in (0, 1):
            metrics = check_run_directory(study / arm / f"seed-{seed}", backend.framework, backend.checkpoint_name,
                                          EPOCHS)
            assert metrics["arch"] == arch and metrics["config"]["seed"] == seed
            assert metrics["params_trainable"] == params, "pinned by hand in shared/tests/model/test_specs.py"
    improved = rundir.read_json(study / "improved" / "seed-0" / rundir.METRICS)["config"]
    assert (improved["augment_padding"], improved["augment_flip"], improved["lr_schedule"]) == (4, True, "constant")
    baseline = rundir.read_json(study / "baseline" / "seed-0" / rundir.METRICS)["config"]
    assert (baseline["augment_padding"], baseline["augment_flip"]) == (0, False), "the baseline is the seed recipe"
    recipe = rundir.read_json(study / "comparison.json")["variants"]["improved"]["recipe"]
    assert recipe == {"lr_schedule": "constant", "weight_decay": 0.0, "augment_padding": 4, "augment_flip": True}


def test_the_arm_folders_hold_the_first_seeds_model(backend, study):
    for arm in ("baseline", "improved"):
        for name in (backend.checkpoint_name, rundir.WEIGHTS, rundir.ONNX, rundir.METRICS):
            assert (study / arm / name).read_bytes() == (study / arm / "seed-0" / name).read_bytes(), f"{arm}/{name}"
        assert not (study / arm / rundir.CHECKPOINTS).exists(), "the training checkpoints stay with the seed's run"


def test_the_table_gives_mean_and_std_over_seeds_and_the_gain(backend, study):
    table = rundir.read_json(study / "comparison.json")
    assert table["repeats"] == 2 and table["seeds"] == [0, 1] and table["framework"] == backend.framework
    finals = {}
    for arm in ("baseline", "improved"):
        runs = [rundir.read_json(study / arm / f"seed-{seed}" / rundir.METRICS) for seed in (0, 1)]
        finals[arm] = [metrics["history"][-1]["val_acc"] for metrics in runs]
        row = table["variants"][arm]
        assert row["runs"] == [f"{arm}/seed-0", f"{arm}/seed-1"]
        assert row["final_val_acc"] == pytest.approx(statistics.mean(finals[arm]))
        assert row["final_val_acc_std"] == pytest.approx(statistics.stdev(finals[arm]))
    gain = table["gain"]
    difference = statistics.mean(finals["improved"]) - statistics.mean(finals["baseline"])
    spread = statistics.stdev(finals["improved"]) + statistics.stdev(finals["baseline"])
    assert gain["final_val_acc"] == pytest.approx(difference) and gain["spread"] == pytest.approx(spread)
    assert gain["exceeds_spread"] == (difference > spread)
    text = (study / "comparison.md").read_text()
    verdict = "**exceeds**" if gain["exceeds_spread"] else "**does not exceed**"
    assert "Gain of **improved** over **baseline**" in text and verdict in text
    assert "±" in text and not (study / rundir.BEST).exists(), "a study with a baseline names its best arm instead"


def test_the_study_writes_a_lab_report_with_the_combined_plot(study):
    report = (study / "report.md").read_text()
    assert "baseline" in report and "improved" in report and "study.png" in report
    assert (study / "study.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_reloads_the_best_arm(backend, study, monkeypatch, capsys):
    from shared.commands.evaluate import main as evaluate

    monkeypatch.setenv("CNNLAB_HOME", str(study.parent / "home"))
    assert evaluate(backend.framework, lambda: backend, [str(study)]) == 0
    best = rundir.read_json(study / "comparison.json")["best"]
    assert f"{study / best}: " in capsys.readouterr().out


def test_a_cosine_schedule_resumes_exactly_and_refuses_to_be_extended(backend, archive, tmp_path, monkeypatch,
                                                                        capsys):
    """Stopped after the improved arm's first epoch and resumed, it ends where the straight study ends: the crops,
    flips and rates of epoch 2 are drawn again from (seed, epoch, batch)."""
    monkeypatch.setenv("CNNLAB_HOME", str(tmp_path / "home"))
    flags = ["--experiment", "cifar100-improved", "--data", str(archive), "--epochs", str(EPOCHS), "--repeats", "1",
             "--lr-schedule", "cosine", "--weight-decay", "5e-4"]
    calls = []

    def stop_in_improved_arm(model, optimizer, train_set, val, config, on_epoch_end, first_epoch=1, **options):
        calls.append(config.arch)
        fit = interrupting_backend(backend, after_epoch=1).fit if config.arch == "cifar_improved" else backend.fit
        return fit(model, optimizer, train_set, val, config, on_epoch_end, first_epoch, **options)

    stopped, straight = tmp_path / "stopped", tmp_path / "straight"
    assert train(overriding(backend, fit=stop_in_improved_arm), [*flags, "--out", str(stopped)]) == 130
    assert train(backend, ["--resume", str(stopped)]) == 0
    assert train(backend, [*flags, "--out", str(straight)]) == 0
    assert differences(final_state(stopped / "improved"), final_state(straight / "improved")) == []
    metrics = rundir.read_json(straight / "improved" / rundir.METRICS)
    assert metrics["config"]["lr_schedule"] == "cosine" and metrics["config"]["weight_decay"] == 5e-4
    rates = [record["lr"] for record in metrics["history"]]
    assert rates[-1] < rates[0] <= 1e-3, "the cosine schedule lowered the rate"

    capsys.readouterr()
    assert train(backend, ["--resume", str(straight), "--epochs", str(EPOCHS + 1)]) == 2
    assert "cosine learning-rate schedule" in capsys.readouterr().err


def test_repeats_apply_to_studies_only(backend, capsys):
    assert train(backend, ["--repeats", "3"]) == 2
    assert "--repeats applies to the studies" in capsys.readouterr().err
