"""How long torchrun's workers take to leave after a stop: ``cnnlab_torch.train`` under torchrun with two processes,
SIGINT once the first epoch is checkpointed, and the seconds until every process has exited. Run it by hand:

    python -m tests.scripts.torchrun_stop            # SIGINT to torchrun alone (kill -INT), which passes SIGTERM on
    python -m tests.scripts.torchrun_stop --group    # SIGINT to torchrun and its workers, as Ctrl-C in a terminal

It prints the seconds, the exit status, the run's status and its epochs kept. ``tests/test_distributed_faults.py``
runs ``stop_under_torchrun`` once and holds it to ``STOP_SECONDS``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
STOP_SECONDS = 5.0  # the bound: every process gone within this long of the signal


@dataclass
class Stopped:
    seconds: float  # from the signal until torchrun and both workers had exited
    exit_status: int  # torchrun's
    status: str  # the run directory's metrics.json
    epochs: int  # finished epochs the run keeps
    stderr: str  # torchrun's and the workers'


def stop_under_torchrun(out: Path, group: bool = False, epochs: int = 20, started_within: float = 300) -> Stopped:
    """Train ``epochs`` digits epochs under torchrun into ``out``, send SIGINT once epoch 1 is recorded (to the
    process group when ``group``, as Ctrl-C does), and time every process's exit. An epoch takes about a second,
    so the signal comes well before the last one."""
    command = [*TORCHRUN, "-m", "cnnlab_torch.train", "--epochs", str(epochs), "--out", str(out)]
    launcher = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)  # its own group: a signal to it reaches nothing else here
    try:
        _wait_for_first_epoch(out / "metrics.json", launcher, started_within)
        workers = _children(launcher.pid)
        if group:
            os.killpg(launcher.pid, signal.SIGINT)
        else:
            launcher.send_signal(signal.SIGINT)
        signalled = time.monotonic()
        _, stderr = launcher.communicate(timeout=120)
        while any(_alive(pid) for pid in workers):
            time.sleep(0.05)
        seconds = time.monotonic() - signalled
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
            launcher.wait()
    metrics = json.loads((out / "metrics.json").read_text())
    return Stopped(seconds, launcher.returncode, metrics["status"], len(metrics["history"]), stderr)


def _wait_for_first_epoch(metrics: Path, launcher: subprocess.Popen, within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if launcher.poll() is not None:
            raise RuntimeError(f"torchrun ended before training began:\n{launcher.stderr.read()[-3000:]}")
        try:
            if json.loads(metrics.read_text())["history"]:
                return
        except (OSError, ValueError, KeyError):  # not written yet, or written while read
            pass
        time.sleep(0.1)
    raise RuntimeError(f"no epoch finished within {within} s")


def _children(pid: int) -> list[int]:
    """The processes torchrun started (its workers), from /proc."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting for torchrun to reap it (torchrun may already have exited)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as folder:
        stopped = stop_under_torchrun(Path(folder) / "run", group="--group" in sys.argv)
        print(f"every process gone {stopped.seconds:.1f} s after SIGINT; torchrun exit {stopped.exit_status}; "
              f"run {stopped.status}, {stopped.epochs} epoch(s) kept")
        if "--verbose" in sys.argv:
            print(stopped.stderr[-4000:])
