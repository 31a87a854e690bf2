"""Faults in the files and the machine end in one clear line or a correct finish: a damaged checkpoint falls back to
the one before it or is refused, a second process cannot train the same run, a full or read-only disk stops the run
with its status set and no temporary folder left, and a stop during start-up leaves nothing behind. Each fault is
produced for real: a damaged or deleted file, a second process, a small tmpfs, a read-only bind mount."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from shared.commands.evaluate import main as evaluate
from shared.formats import checkpoints, rundir
from shared.util.signals import StopRequested
from tests.support.helpers import overriding, default_run, differences, final_state, train
from tests.support.mounts import mounted

EPOCHS = 2


@pytest.fixture(scope="module")
def reference(backend, tmp_path_factory) -> Path:
    """A finished run of the default experiment: checkpoints of epochs 1 and 2."""
    return default_run(backend, tmp_path_factory.mktemp("reference") / "run", EPOCHS)


def copy_of(run_dir: Path, target: Path) -> Path:
    shutil.copytree(run_dir, target)
    return target


def snapshot(run_dir: Path) -> dict[str, bytes]:
    return {str(path.relative_to(run_dir)): path.read_bytes() for path in sorted(run_dir.rglob("*"))
            if path.is_file()}


def one_error_line(stderr: str, prog: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.startswith(f"{prog}: error:")]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def damages(backend) -> dict:
    """Each damage the probe found, to a checkpoint folder."""
    native_model, native_optimizer = backend.checkpoint_name, backend.optimizer_name

    def truncate(path: Path) -> None:
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

    return {
        f"{native_model} garbage": lambda folder: (folder / native_model).write_bytes(b"garbage" * 10),
        f"{native_model} truncated": lambda folder: truncate(folder / native_model),
        f"{native_model} deleted": lambda folder: (folder / native_model).unlink(),
        f"{native_optimizer} garbage": lambda folder: (folder / native_optimizer).write_bytes(b"garbage"),
        f"{native_optimizer} deleted": lambda folder: (folder / native_optimizer).unlink(),
        "state.json unreadable": lambda folder: (folder / rundir.STATE).write_text("{"),
        "state.json deleted": lambda folder: (folder / rundir.STATE).unlink(),
        "weights.npz truncated": lambda folder: truncate(folder / rundir.WEIGHTS),
    }


def test_a_damaged_last_checkpoint_falls_back_to_the_one_before_and_ends_exactly(backend, reference, tmp_path,
                                                                                  capsys):
    run_dir = copy_of(reference, tmp_path / "run")
    (run_dir / rundir.CHECKPOINTS / "epoch-0002" / backend.checkpoint_name).write_bytes(b"garbage")
    assert train(backend, ["--resume", str(run_dir)]) == 0
    err = capsys.readouterr().err
    assert f"epoch-0002: {backend.checkpoint_name} has 7 bytes" in err and "resuming from epoch 1" in err
    assert differences(final_state(run_dir), final_state(reference)) == []


@pytest.mark.parametrize("damage", range(8))
def test_with_no_intact_checkpoint_resume_is_refused_and_changes_nothing(backend, reference, tmp_path, capsys,
                                                                          damage):
    name, damage_folder = list(damages(backend).items())[damage]
    run_dir = copy_of(reference, tmp_path / "run")
    for folder in (run_dir / rundir.CHECKPOINTS).iterdir():
        damage_folder(folder)
    before = snapshot(run_dir)
    assert train(backend, ["--resume", str(run_dir)]) == 2, name
    line = one_error_line(capsys.readouterr().err, f"cnnlab_{backend.framework}.train")
    assert "epoch-0002" in line and name.split()[0] in line and "nothing was changed" in line
    assert snapshot(run_dir) == before


def test_resume_with_the_checkpoints_deleted_is_refused_not_restarted(backend, reference, tmp_path, capsys):
    run_dir = copy_of(reference, tmp_path / "run")
    shutil.rmtree(run_dir / rundir.CHECKPOINTS)
    assert train(backend, ["--resume", str(run_dir), "--epochs", "3"]) == 2
    assert "records 2 finished epoch(s)" in one_error_line(capsys.readouterr().err, f"cnnlab_{backend.framework}.train")


def test_a_failed_resume_into_a_new_directory_leaves_none_behind(backend, reference, tmp_path, capsys):
    run_dir = copy_of(reference, tmp_path / "run")
    for folder in (run_dir / rundir.CHECKPOINTS).iterdir():
        damages(backend)["weights.npz truncated"](folder)
    new = tmp_path / "new"
    assert train(backend, ["--resume", str(run_dir), "--epochs", "3", "--out", str(new)]) == 2
    assert rundir.WEIGHTS in one_error_line(capsys.readouterr().err, f"cnnlab_{backend.framework}.train")
    assert not new.exists()


@pytest.mark.parametrize("damage", ["native model garbage", "weights.npz truncated"])
def test_evaluate_of_a_damaged_file_is_one_line_and_exit_2(backend, reference, tmp_path, capsys, damage):
    run_dir = copy_of(reference, tmp_path / "run")
    name = backend.checkpoint_name if damage == "native model garbage" else rundir.WEIGHTS
    (run_dir / name).unlink()  # a hard link to the checkpoint's file: replace it, do not write through it
    (run_dir / name).write_bytes(b"garbage")
    argv = [str(run_dir)] if name == backend.checkpoint_name else [str(run_dir), "--neutral"]
    assert evaluate(backend.framework, lambda: backend, argv) == 2
    line = one_error_line(capsys.readouterr().err, f"cnnlab_{backend.framework}.evaluate")
    # verified against the run's record before the loader sees it (shared.formats.verified)
    assert f"{run_dir / name} has 7 bytes, but its run's metrics.json records" in line and "damaged" in line


LOCK_HOLDER = """
import fcntl, os, sys, time
handle = open(sys.argv[1], "a+")
fcntl.flock(handle, fcntl.LOCK_EX)
handle.seek(0); handle.truncate(); handle.write(f"{os.getpid()}\\n"); handle.flush()
print("held", flush=True)
time.sleep(120)
"""


def test_a_second_process_cannot_train_the_same_run(backend, reference, tmp_path, capsys):
    """Another process holds the run's lock: --resume is refused with its pid; once it is gone, the lock is free."""
    run_dir = copy_of(reference, tmp_path / "run")
    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(run_dir / rundir.LOCK)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        before = snapshot(run_dir)
        assert train(backend, ["--resume", str(run_dir), "--epochs", "3"]) == 2
        line = one_error_line(capsys.readouterr().err, f"cnnlab_{backend.framework}.train")
        assert f"another process (pid {holder.pid})" in line
        assert snapshot(run_dir) == before
    finally:
        holder.kill()
        holder.wait()
    with rundir.locked(run_dir):  # a dead holder does not block: the OS dropped its lock
        assert (run_dir / rundir.LOCK).read_text().strip() == str(__import__("os").getpid())


def test_a_stop_during_start_up_leaves_nothing_and_the_same_command_works(backend, tmp_path, capsys):
    def stopped_while_building(*args, **kwargs):
        raise StopRequested(15)

    run_dir = tmp_path / "run"
    argv = ["--epochs", "1", "--out", str(run_dir)]
    assert train(overriding(backend, build_model=stopped_while_building), argv) == 143
    assert "nothing was trained" in capsys.readouterr().err
    assert not run_dir.exists()
    run_dir.mkdir()  # as a killed start leaves it: an empty folder does not block the same command
    assert train(backend, argv) == 0


def used_bytes(paths) -> int:
    return sum(path.stat().st_size for path in paths if path.is_file())


def test_a_full_disk_during_a_checkpoint_stops_the_run_cleanly(backend, reference, tmp_path, capsys):
    """The disk has room for everything up to epoch 1's checkpoint and for half of epoch 2's."""
    checkpoint = used_bytes((reference / rundir.CHECKPOINTS / "epoch-0001").iterdir())
    before_training = used_bytes(reference / name for name in (rundir.RUN, rundir.SPLIT, rundir.SUMMARY,
                                                                rundir.METRICS, rundir.CURVES))
    size = before_training + 1.5 * checkpoint + 64 * 4096  # tmpfs counts whole pages
    with mounted("tmpfs", tmp_path / "disk", "-t", "tmpfs", "-o", f"size={int(size)}", "tmpfs") as disk:
        run_dir = disk / "run"
        assert train(backend, ["--epochs", str(EPOCHS), "--out", str(run_dir)]) == 4
        err = capsys.readouterr().err
        assert "Traceback" not in err
        line = next(line for line in err.splitlines() if line.startswith("could not write"))
        assert "No space left on device" in line and "keeps epoch 1" in line and "--resume" in line
        assert "a checkpoint needs about" in line
        metrics = rundir.read_json(run_dir / rundir.METRICS)
        assert metrics["status"] == "stopped" and "No space left" in metrics["stop_reason"]
        assert not [path for path in run_dir.rglob("*") if ".part" in path.name], "no temporary file left"
        assert checkpoints.latest(run_dir).epoch == 1
        moved = copy_of(run_dir, tmp_path / "moved")  # "once there is space"
    assert train(backend, ["--resume", str(moved)]) == 0
    assert differences(final_state(moved), final_state(reference)) == []


def test_a_full_disk_before_training_leaves_no_run_directory(backend, tmp_path, capsys):
    with mounted("tmpfs", tmp_path / "disk", "-t", "tmpfs", "-o", "size=8k", "tmpfs") as disk:
        assert train(backend, ["--epochs", "1", "--out", str(disk / "run")]) == 2
        line = one_error_line(capsys.readouterr().err, f"cnnlab_{backend.framework}.train")
        assert "No space left on device" in line and "nothing was kept" in line
        assert not (disk / "run").exists()


def test_a_read_only_run_directory_is_refused_in_one_line(backend, reference, tmp_path, capsys):
    run_dir = copy_of(reference, tmp_path / "run")
    with mounted("read-only bind mount", run_dir, "--bind", "-o", "ro", run_dir):
        subprocess.run(["mount", "-o", "remount,ro,bind", run_dir], check=False)
        assert train(backend, ["--resume", str(run_dir), "--epochs", "3"]) == 2
        line = one_error_line(capsys.readouterr().err, f"cnnlab_{backend.framework}.train")
        assert f"cannot write to {run_dir}" in line
