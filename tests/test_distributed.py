"""Several replicas train the weights one device trains: each replica takes its rows of the same batches, the
gradients are summed or averaged over the replicas, and BatchNorm synchronises its statistics.

- PyTorch: torchrun with two processes (DistributedDataParallel over gloo on this CPU; NCCL on GPUs). Rank 0 alone
  writes the run directory.
- Keras: ``--replicas 2``, tf.distribute.MirroredStrategy over the CPU split into two logical devices (GPUs on a
  GPU machine), in one process.
"""

import importlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from shared.formats import rundir
from shared.util.errors import EXIT_PEER_LOST, UsageError
from shared.formats.tolerances import compare

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]


def launch(framework: str, replicas: int, *flags: str) -> list[str]:
    """The command that trains with ``replicas``: torchrun's processes for PyTorch, --replicas for Keras."""
    if framework == "torch":
        return [*(TORCHRUN if replicas == 2 else [sys.executable]), "-m", "cnnlab_torch.train", *flags]
    return [sys.executable, "-m", "cnnlab_tf.train", *flags, "--replicas", str(replicas)]


def train(framework: str, out: Path, *flags: str, replicas: int) -> subprocess.CompletedProcess:
    result = subprocess.run(launch(framework, replicas, *flags, "--out", str(out)), capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def native_weights(framework: str, run: Path) -> dict[str, np.ndarray]:
    """Every parameter and BatchNorm statistic of the native checkpoint, in float64 (weights.npz is float32)."""
    if framework == "torch":
        import torch
        return {name: value.double().numpy() for name, value in
                torch.load(run / "model.pt", weights_only=True).items() if value.is_floating_point()}
    import keras

    import cnnlab_tf.model  # noqa: F401 - registers the custom layers the checkpoint names
    model = keras.models.load_model(run / "model.keras", compile=False)
    return {variable.path: np.asarray(variable.numpy(), np.float64) for variable in model.weights}


def weight_differences(framework: str, single: Path, replicated: Path) -> dict[str, float]:
    one, two = native_weights(framework, single), native_weights(framework, replicated)
    assert one.keys() == two.keys() and one
    differences = {}
    for name in one:
        within, difference, bound = compare(two[name], one[name], "distributed", "64-true")
        assert within, f"{name}: two replicas differ from one by {difference:.3g} (bound {bound:.3g})"
        differences[name] = difference
    return differences


@pytest.mark.parametrize("framework, arch, flags, resumed", [
    # Two digits epochs of 45 steps (the last of 30 images): the replicas train the first, stop, and --resume with
    # two replicas for the second; one device trains both straight.
    ("torch", "cifar_cnn_max", ["--epochs", "2"], True),
    ("tf", "cifar_cnn_max", ["--epochs", "2"], True),
])
def test_two_replicas_train_the_weights_of_one(framework, arch, flags, resumed, tmp_path):
    flags = ["--arch", arch, "--precision", "64-true", *flags]
    train(framework, tmp_path / "one", *flags, replicas=1)
    if resumed:  # the last --epochs wins: one epoch, then the run's own settings extended to the full two
        result = train(framework, tmp_path / "two", *flags, "--epochs", "1", replicas=2)
        subprocess.run(launch(framework, 2, "--resume", str(tmp_path / "two"), "--epochs", "2"), check=True,
                       capture_output=True, timeout=600)
    else:
        result = train(framework, tmp_path / "two", *flags, replicas=2)
    differences = weight_differences(framework, tmp_path / "one", tmp_path / "two")
    print(f"{framework} {arch}: max |weight difference| {max(differences.values()):.3g}")
    one, two = (rundir.read_json(tmp_path / run / rundir.METRICS) for run in ("one", "two"))
    assert (one["replicas"], two["replicas"]) == (1, 2)
    assert two["status"] == "complete" and len(two["history"]) == len(one["history"])
    assert len(two["resumes"]) == int(resumed)
    # Every replica's loss counts once: each epoch's training loss is the single device's (a replica counted twice,
    # or a loss left unscaled, would double it), and the validation of the same weights agrees.
    for single, replicated in zip(one["history"], two["history"]):
        within, difference, bound = compare(np.array(replicated["train_loss"]), np.array(single["train_loss"]),
                                            "distributed", "64-true")
        assert within, f"epoch {single['epoch']}: training loss differs by {difference:.3g} (bound {bound:.3g})"
        assert single["val_acc"] == replicated["val_acc"]
    if framework == "torch":
        assert two["processes"] == 2 and "2 processes (DDP, gloo)" in two["device"]
        # Rank 0 alone printed and wrote: one summary, one report, one set of event files per start.
        assert result.stdout.count("validation (") == 1 and result.stdout.count(f"{arch}: input") == 1
        assert len(list((tmp_path / "two" / "tensorboard").iterdir())) == 1 + int(resumed)
    else:
        assert two["processes"] == 1 and "2 replicas (MirroredStrategy)" in two["device"]


@pytest.mark.parametrize("framework", ["torch", "tf"])
def test_two_replicas_train_the_resnet18_weights_of_one(framework, tmp_path):
    """The backend's ``fit`` alone (tests/scripts/replicated_fit.py), which spares the command line's two minutes of
    validation and export: three steps of 9 images with crops and flips, rows 4/5 of each on the two replicas,
    BatchNorm in every block (its running statistics are compared too)."""
    script = ["-m", "tests.scripts.replicated_fit", framework, "resnet18"]
    launchers = {"one": [sys.executable], "two": TORCHRUN} if framework == "torch" else {"both": [sys.executable]}
    results = {}
    for name, launcher in launchers.items():
        subprocess.run([*launcher, *script, str(tmp_path / f"{name}.npz")], check=True, capture_output=True,
                       timeout=600, cwd=Path(__file__).resolve().parents[1])
        results.update(np.load(tmp_path / f"{name}.npz"))
    names = [key.removeprefix("one/") for key in results if key.startswith("one/")]
    assert len(names) == 1 + 102  # the losses, and ResNet-18's 62 parameters and 2 x 20 BatchNorm statistics
    differences = {}
    for name in names:
        within, differences[name], bound = compare(results[f"two/{name}"], results[f"one/{name}"], "distributed",
                                                   "64-true")
        assert within, f"{name}: two replicas differ from one by {differences[name]:.3g} (bound {bound:.3g})"
    print(f"{framework} resnet18: max |difference| {max(differences.values()):.3g}")


def test_replicas_that_cannot_be_had_are_refused_before_anything_is_written(backend, tmp_path):
    if backend.framework == "tf":
        import tensorflow as tf
        tf.config.list_logical_devices("CPU")  # TensorFlow has started on one CPU device, as after any earlier run
        words = ["--replicas 2", "1 CPU device(s)", "cannot split the CPU", "restart the kernel"]
    else:
        words = ["--replicas 2", "several processes", "torchrun --nproc_per_node 2 -m cnnlab_torch.train"]
    with pytest.raises(UsageError) as error:
        importlib.import_module(f"cnnlab_{backend.framework}").train(epochs=1, replicas=2, out=tmp_path / "run")
    assert all(word in str(error.value) for word in words), str(error.value)
    assert not (tmp_path / "run").exists()


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for each in sockets:
        each.bind(("localhost", 0))
    ports = [each.getsockname()[1] for each in sockets]
    for each in sockets:
        each.close()
    return ports


def start_workers(folder: Path, *flags: str) -> list[subprocess.Popen]:
    """``cnnlab_tf.train`` as two workers of a MultiWorkerMirroredStrategy cluster on the loopback address, each
    with its own TF_CONFIG, as on two machines; started, not waited for."""
    cluster = {"worker": [f"localhost:{port}" for port in free_ports(2)]}
    # As from a user's shell: this process's own import of cnnlab_tf set TensorFlow's log level for one device
    environ = {name: value for name, value in os.environ.items() if name != "TF_CPP_MIN_LOG_LEVEL"}
    return [subprocess.Popen([sys.executable, "-m", "cnnlab_tf.train", *flags], cwd=folder,
                             env={**environ, "TF_CONFIG": json.dumps({"cluster": cluster, "task": {
                                 "type": "worker", "index": index}})},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for index in (0, 1)]


def run_workers(folder: Path, *flags: str) -> list[str]:
    """Two workers (``start_workers``) run to the end; returns what each printed."""
    workers = start_workers(folder, *flags)
    outputs = [worker.communicate(timeout=600) for worker in workers]
    for worker, (_, errors) in zip(workers, outputs):
        assert worker.returncode == 0, errors[-3000:]
    return [printed for printed, _ in outputs]


def test_ctrl_c_to_the_chief_ends_the_other_worker_in_one_line(tmp_path):
    """The chief stops at Ctrl-C as a run does; the other worker, waiting in a collective the chief will never
    join, ends with one line and exit status 5, not TensorFlow's CollectiveReduceV2 traceback."""
    chief, other = start_workers(tmp_path, "--epochs", "50")
    deadline = time.monotonic() + 300
    while not list(tmp_path.glob(f"runs/*/{rundir.CHECKPOINTS}/*")) and time.monotonic() < deadline:
        time.sleep(0.2)  # both workers are training once the chief has saved its first epoch
    chief.send_signal(signal.SIGINT)
    (_, chief_errors), (_, errors) = chief.communicate(timeout=300), other.communicate(timeout=300)
    assert chief.returncode == 130, chief_errors[-3000:]
    lines = [line for line in errors.splitlines() if line.strip() and "batch/s" not in line]  # less the progress bars
    assert other.returncode == EXIT_PEER_LOST and len(lines) == 1, errors[-3000:]
    [run] = (tmp_path / "runs").iterdir()
    assert lines[0].startswith("stopped: another worker left the run") and f"--resume runs/{run.name}" in lines[0]


def test_two_keras_workers_train_and_resume_the_weights_of_one(tmp_path):
    """Two workers train an epoch and resume for a second; the result is one device's straight two epochs. No
    --out: the chief's default run directory, which has its start time in it, is the one both workers use."""
    flags = ["--precision", "64-true", "--val-fraction", "0.9"]
    train("tf", tmp_path / "straight", *flags, "--epochs", "2", replicas=1)
    (tmp_path / "cluster").mkdir()
    printed = run_workers(tmp_path / "cluster", *flags, "--epochs", "1")
    [run] = (tmp_path / "cluster" / "runs").iterdir()
    # The chief alone printed the report; the other worker's output went nowhere.
    assert "validation (" in printed[0] and "validation (" not in printed[1]
    run_workers(tmp_path / "cluster", "--resume", str(run), "--epochs", "2")
    differences = weight_differences("tf", tmp_path / "straight", run)
    print(f"tf cifar_cnn_max, 2 workers, resumed: max |weight difference| {max(differences.values()):.3g}")
    metrics = rundir.read_json(run / rundir.METRICS)
    assert metrics["status"] == "complete" and len(metrics["history"]) == 2 and len(metrics["resumes"]) == 1
    assert (metrics["processes"], metrics["replicas"]) == (2, 2)
    assert "2 workers x 1 replica(s) (MultiWorkerMirroredStrategy)" in metrics["device"]


@pytest.mark.parametrize("config, words", [
    ("{not json", ["TF_CONFIG is not a cluster", '"cluster"']),
    ('{"cluster": {"worker": ["a:1"], "ps": ["b:2"]}, "task": {"type": "ps", "index": 0}}',
     ["MultiWorkerMirroredStrategy", "'ps'"]),
    # a chief in a cluster without one: TensorFlow's own "ValueError: task_type 'chief' not found in cluster_spec"
    ('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "chief", "index": 0}}',
     ["task chief 0 is not in the cluster", "its tasks are worker 0, worker 1"]),
], ids=["not-json", "parameter-server", "chief-not-in-cluster"])
def test_a_broken_tf_config_is_one_clear_error_before_anything_is_written(config, words, tmp_path, monkeypatch):
    monkeypatch.setenv("TF_CONFIG", config)
    with pytest.raises(UsageError) as error:
        importlib.import_module("cnnlab_tf").train(epochs=1, out=tmp_path / "run")
    assert all(word in str(error.value) for word in words), str(error.value)
    assert not (tmp_path / "run").exists()


# Eight logical CPU devices in a fresh process (TensorFlow splits the CPU before it first runs): seven rows, an
# epoch's last validation batch, leave one replica none, which crashed the convolution before the rows were padded.
_SEVEN_ROWS_OVER_EIGHT_REPLICAS = """
import sys
import time
import numpy as np
import shared.training.distributed
shared.training.distributed.usable_cores = lambda: 8  # the fault needs 8 replicas, whatever this machine's cores
from cnnlab_tf.backend import BACKEND
from cnnlab_tf.model import unmirrored_model
from shared.model.registry import build_spec
BACKEND.select_device("cpu", 8)
spec = build_spec("cifar_improved", 10, 32)
model = BACKEND.build_model(spec, "32-true")
alone = unmirrored_model(spec)
alone.set_weights(model.get_weights())
images = (np.random.default_rng(0).random((15, 32, 32, 3)) * 255).astype(np.float32)
found = {}
for rows, batch in ((7, 7), (15, 8), (15, 15)):
    found[f"spread-{rows}-{batch}"] = BACKEND.predict_logits(model, images[:rows], batch)
    found[f"single-{rows}-{batch}"] = BACKEND.predict_logits(alone, images[:rows], batch)
np.savez(sys.argv[1], **found)
"""


def test_a_batch_smaller_than_the_replicas_is_predicted_whole(tmp_path):
    out = tmp_path / "logits.npz"
    result = subprocess.run([sys.executable, "-c", _SEVEN_ROWS_OVER_EIGHT_REPLICAS, str(out)], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    logits = np.load(out)
    for rows, batch in ((7, 7), (15, 8), (15, 15)):
        spread, single = logits[f"spread-{rows}-{batch}"], logits[f"single-{rows}-{batch}"]
        assert spread.shape == single.shape == (rows, 10)
        within, difference, bound = compare(spread, single, "same_weights")
        assert within, f"{rows} rows in batches of {batch} over 8 replicas: {difference:.3g} (bound {bound:.3g})"
