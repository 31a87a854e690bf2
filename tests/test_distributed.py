"""torchrun with two processes trains the weights one process trains: each process takes its rows of the same
batches, DDP averages the gradients and BatchNorm synchronises its statistics. gloo on this CPU; the same code runs
NCCL on GPUs. Rank 0 alone writes the run directory."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from shared import rundir
from shared.tolerances import compare

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]


def train(out: Path, *flags: str, processes: int) -> subprocess.CompletedProcess:
    launcher = TORCHRUN if processes == 2 else [sys.executable]
    result = subprocess.run([*launcher, "-m", "cnnlab_torch.train", *flags, "--out", str(out)], capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def weight_differences(single: Path, distributed: Path) -> dict[str, float]:
    one, two = (torch.load(run / "model.pt", weights_only=True) for run in (single, distributed))
    assert one.keys() == two.keys()
    differences = {}
    for name in one:
        within, difference, bound = compare(two[name].double().numpy(), one[name].double().numpy(), "distributed",
                                            "64-true")
        assert within, f"{name}: two processes differ from one by {difference:.3g} (bound {bound:.3g})"
        differences[name] = difference
    return differences


@pytest.mark.parametrize("arch, flags", [
    # a whole digits epoch: 45 steps, the last of 30 images
    ("cifar_cnn_max", ["--epochs", "1"]),
    # 90 training images in batches of 33: rows 16/17 and then 12/12; BatchNorm in every block
    ("resnet18", ["--epochs", "1", "--val-fraction", "0.95", "--batch-size", "33"]),
])
def test_two_processes_train_the_weights_of_one(arch, flags, tmp_path):
    flags = ["--arch", arch, "--precision", "64-true", *flags]
    train(tmp_path / "one", *flags, processes=1)
    result = train(tmp_path / "two", *flags, processes=2)
    differences = weight_differences(tmp_path / "one", tmp_path / "two")
    print(f"{arch}: max |weight difference| {max(differences.values()):.3g}")
    one, two = (rundir.read_json(tmp_path / run / rundir.METRICS) for run in ("one", "two"))
    assert (one["processes"], two["processes"]) == (1, 2) and "2 processes (DDP, gloo)" in two["device"]
    assert one["history"][0]["val_acc"] == two["history"][0]["val_acc"]
    # Rank 0 alone printed and wrote: one summary, one report, one set of event files.
    assert result.stdout.count("validation (") == 1 and result.stdout.count(f"{arch}: input") == 1
    assert len(list((tmp_path / "two" / "tensorboard").iterdir())) == 1


def test_a_distributed_run_resumes_distributed(tmp_path):
    flags = ["--precision", "64-true", "--val-fraction", "0.9"]
    train(tmp_path / "straight", *flags, "--epochs", "2", processes=1)
    train(tmp_path / "resumed", *flags, "--epochs", "1", processes=2)
    subprocess.run([*TORCHRUN, "-m", "cnnlab_torch.train", "--resume", str(tmp_path / "resumed"), "--epochs", "2"],
                   check=True, capture_output=True, timeout=600)
    metrics = rundir.read_json(tmp_path / "resumed" / rundir.METRICS)
    assert metrics["status"] == "complete" and len(metrics["history"]) == 2
    weight_differences(tmp_path / "straight", tmp_path / "resumed")
