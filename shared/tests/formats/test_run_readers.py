"""Reading run directories: valid JSON even for NaN, a killed run recognised as stopped, and one clear line from
evaluate and compare for damaged or mismatched runs. No framework is imported: these checks come first."""

import json
import subprocess
import sys

import numpy as np
import pytest

from shared.data.dataset import Split, stratified_split
from shared.formats import rundir
from shared.commands.compare import main as compare
from shared.commands.evaluate import main as evaluate


def no_backend():
    raise AssertionError("the backend must not be loaded for a run that is refused")


def test_metrics_with_nan_are_valid_json(tmp_path):
    rundir.write_json(tmp_path / "m.json", {"loss": float("nan"), "history": [{"val_loss": float("inf")}]})
    text = (tmp_path / "m.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"loss": None, "history": [{"val_loss": None}]}


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_running_run_whose_process_is_gone_is_stopped():
    alive = {"status": "running", "process": rundir.running_marker()}
    assert rundir.effective_status(alive) == "running"
    gone = {"status": "running", "process": {**rundir.running_marker(), "pid": dead_pid()}}
    assert rundir.effective_status(gone) == "stopped"
    assert rundir.effective_status({"status": "complete"}) == "complete"


def refused(capsys, command, *args) -> str:
    assert command(*args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_evaluate_a_truncated_metrics_file(tmp_path, capsys):
    (tmp_path / "metrics.json").write_text('{"framework": "torch", "hist')
    line = refused(capsys, evaluate, "torch", no_backend, [str(tmp_path)])
    assert f"{tmp_path / 'metrics.json'} is damaged" in line


def test_evaluate_a_killed_run_says_resume(tmp_path, capsys):
    rundir.write_json(tmp_path / "metrics.json", {"status": "running", "process": {**rundir.running_marker(),
                                                                                     "pid": dead_pid()}})
    line = refused(capsys, evaluate, "tf", no_backend, [str(tmp_path)])
    assert "is stopped, not complete" in line and "--resume" in line


def test_compare_a_study_with_a_single_run(tmp_path, capsys):
    (tmp_path / "study").mkdir()
    (tmp_path / "study" / "comparison.json").write_text(json.dumps({"variants": {}}))
    (tmp_path / "single").mkdir()
    (tmp_path / "single" / "metrics.json").write_text(json.dumps({"arch": "cifar_cnn_max"}))
    line = refused(capsys, compare, [str(tmp_path / "study"), str(tmp_path / "single"), "--out",
                                     str(tmp_path / "cmp")])
    assert "is a study of several variants" in line and "a single run" in line
    assert not (tmp_path / "cmp").exists()


@pytest.mark.parametrize("status, hint", [("interrupted", "--resume"), ("diverged", "lower --lr")])
def test_evaluate_an_unfinished_run_says_what_to_do(tmp_path, capsys, status, hint):
    rundir.write_json(tmp_path / "metrics.json", {"status": status})
    assert hint in refused(capsys, evaluate, "torch", no_backend, [str(tmp_path)])


def test_split_file_round_trip(tmp_path):
    split = stratified_split(np.arange(50) % 5, 0.2, seed=3)
    rundir.write_split(tmp_path, split.to_json())
    restored = Split.from_json(rundir.read_split(tmp_path))
    assert restored.seed == 3 and np.array_equal(restored.train, split.train)
    assert np.array_equal(restored.val, split.val)
