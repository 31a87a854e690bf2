"""Several processes that go wrong end cleanly: a peer that never starts is named in one line after --peer-timeout,
the wait for it stops on Ctrl-C and SIGTERM, absurd CPU replicas are refused before anything is written, and Ctrl-C
under torchrun ends every process within seconds. Each fault is produced for real: a closed port, a signal, a
launcher stopped mid-epoch."""

import importlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback

import pytest

from shared.training import distributed
from shared.training.distributed import Task, usable_cores, wait_for_tasks
from shared.util import signals
from shared.util.errors import EXIT_USAGE, FlagError, UsageError
from tests.scripts.torchrun_stop import STOP_SECONDS, stop_under_torchrun
from tests.test_distributed import free_ports

PEER_TIMEOUT = 2.0  # seconds: long enough to see that the wait is the timeout, short for the suite


def peer_that_never_starts(framework: str) -> tuple[dict, str]:
    """The environment of a process whose peer's address is a closed port, and that address: a TensorFlow worker
    whose chief never starts, or torchrun's rank 1 whose rank 0 (the store) never starts."""
    missing, mine = (f"localhost:{port}" for port in free_ports(2))
    if framework == "tf":
        cluster = {"chief": [missing], "worker": [mine]}
        return {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 0}})}, missing
    host, port = missing.split(":")
    return {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "0", "MASTER_ADDR": host, "MASTER_PORT": port}, missing


@pytest.mark.parametrize("framework", ["torch", "tf"])
def test_a_peer_that_never_starts_is_named_in_one_line_after_the_timeout(framework, tmp_path):
    environment, missing = peer_that_never_starts(framework)
    command = [sys.executable, "-m", f"cnnlab_{framework}.train", "--epochs", "1", "--out", str(tmp_path / "run"),
               "--peer-timeout", str(PEER_TIMEOUT)]
    started = time.monotonic()
    result = subprocess.run(command, env={**os.environ, **environment}, capture_output=True, text=True, timeout=120)
    seconds = time.monotonic() - started
    lines = result.stderr.strip().splitlines()
    assert result.returncode == EXIT_USAGE, result.stderr[-3000:]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert lines[0].startswith(f"cnnlab_{framework}.train: error: ") and missing in lines[0], lines[0]
    assert f"within {PEER_TIMEOUT:g} s" in lines[0] and "--peer-timeout" in lines[0], lines[0]
    assert PEER_TIMEOUT <= seconds < PEER_TIMEOUT + 60, f"{seconds:.1f} s: the wait is the timeout, not more"
    assert not (tmp_path / "run").exists()


def stop_during(wait, signal_number: int, after: float = 0.5) -> float:
    """Run ``wait()`` with the run's signal handlers, send ``signal_number`` to this process ``after`` seconds, and
    return how long ``wait`` took to raise ``StopRequested``."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach only the main thread, and this test runs in another")
    timer = threading.Timer(after, os.kill, (os.getpid(), signal_number))
    with signals.stop_requests():
        started = time.monotonic()
        timer.start()
        try:
            with pytest.raises(signals.StopRequested) as stop:
                wait()
        finally:
            timer.cancel()
    assert stop.value.signal_number == signal_number
    return time.monotonic() - started - after


@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_the_wait_for_a_tf_peer_stops_on_a_signal(signal_number):
    me, chief = (Task(kind, 0, f"localhost:{port}") for kind, port in zip(("worker", "chief"), free_ports(2)))
    late = stop_during(lambda: wait_for_tasks(me, [chief], seconds=60), signal_number)
    assert late < 2, f"the wait went on {late:.1f} s after the signal"


@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_the_wait_for_torch_peers_stops_on_a_signal(signal_number):
    """init_process_group waits in C++, where no signal handler runs; a join that blocks in the same way (a wait
    that releases the interpreter) shows that the main thread still answers."""
    from cnnlab_torch.distributed import _joined_within

    never = threading.Event()
    try:
        late = stop_during(lambda: _joined_within(never.wait, 60, distributed.World(1, 2)), signal_number)
    finally:
        never.set()
    assert late < 2, f"the wait went on {late:.1f} s after the signal"


def test_more_cpu_replicas_than_cores_are_refused_before_anything_is_written(tmp_path):
    import cnnlab_tf

    too_many = usable_cores() + 1
    with pytest.raises(UsageError) as error:
        cnnlab_tf.train(epochs=1, device="cpu", replicas=too_many, out=tmp_path / "run")
    message = str(error.value)
    assert f"--replicas {too_many}" in message and f"{usable_cores()} CPU core(s)" in message, message
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("framework", ["torch", "tf"])
def test_a_bad_value_in_the_api_is_one_exception_not_a_chain(framework):
    with pytest.raises(FlagError) as raised:
        importlib.import_module(f"cnnlab_{framework}").train(epochs=-1)
    error = raised.value
    assert "--epochs" in str(error) and "'-1'" in str(error), str(error)
    assert error.__cause__ is None and error.__context__ is None, "argparse's own errors ride along"
    shown = "".join(traceback.format_exception(error))
    assert shown.count("Traceback") == 1 and "During handling" not in shown, shown


def test_ctrl_c_under_torchrun_ends_every_process_within_seconds(tmp_path):
    """SIGINT to torchrun mid-epoch, as ``kill -INT`` does: torchrun passes it on to both workers. One of them is
    usually inside a collective in C++; before the fix the other waited for it in a barrier until torchrun killed
    both 30 s later (3 runs of 5)."""
    stopped = stop_under_torchrun(tmp_path / "run")
    assert stopped.seconds < STOP_SECONDS, f"{stopped.seconds:.1f} s:\n{stopped.stderr[-3000:]}"
    assert stopped.status == "interrupted" and stopped.epochs >= 1, stopped
