"""Keras's ``fit`` under MultiWorkerMirroredStrategy: two worker processes on this machine, over the loopback
address, against one device. Not part of the suite (three processes and a gRPC cluster are slow on two cores);
run it by hand:

    python -m tests.multiworker_fit [ARCH]          # default cifar_cnn_max; resnet18 works too

It prints each worker's largest weight difference from the single-device run (float64, the batches and crops of
``tests/replicated_fit.py``). The command line refuses ``TF_CONFIG``: what is missing there is listed in the
README's "More than one GPU or machine".
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

PORTS = ("localhost:23456", "localhost:23457")


def worker(index: int | None, arch: str, out: str) -> None:
    """Train once, as worker ``index`` of the two (None: alone on one device), and save the weights."""
    if index is not None:  # before TensorFlow starts: the strategy reads its cluster from TF_CONFIG
        os.environ["TF_CONFIG"] = json.dumps({"cluster": {"worker": list(PORTS)},
                                              "task": {"type": "worker", "index": index}})
    import tensorflow as tf

    from cnnlab_tf import distributed
    from tests.replicated_fit import trained
    if index is not None:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        distributed.start = lambda use_cuda, replicas: None  # keep the cluster's strategy for the run
        distributed._strategy = strategy
    weights, history = trained(1, arch)
    np.savez(out, **{name: np.asarray(value, np.float64) for name, value in weights.items()
                     if np.asarray(value).dtype.kind == "f"})


def main(arch: str = "cifar_cnn_max") -> None:
    folder = Path(tempfile.mkdtemp())
    command = [sys.executable, "-m", "tests.multiworker_fit", "--worker", arch]
    subprocess.run([*command, "single", str(folder / "single.npz")], check=True, capture_output=True)
    workers = [subprocess.Popen([*command, str(index), str(folder / f"worker{index}.npz")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for index in (0, 1)]
    for process in workers:
        _, errors = process.communicate(timeout=600)
        assert process.returncode == 0, errors[-3000:]
    single = np.load(folder / "single.npz")
    for index in (0, 1):
        each = np.load(folder / f"worker{index}.npz")
        difference = max(float(np.abs(each[name] - single[name]).max()) for name in single.files)
        print(f"{arch}, worker {index} of 2: max |weight difference| from one device {difference:.3g} "
              f"({len(single.files)} weights and BatchNorm statistics)")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        _, _, arch, role, out = sys.argv
        worker(None if role == "single" else int(role), arch, out)
    else:
        main(*sys.argv[1:])
