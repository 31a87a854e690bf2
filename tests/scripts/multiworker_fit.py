"""Keras's ``fit`` under MultiWorkerMirroredStrategy at the fit level: two worker processes on this machine, over
the loopback address, against one device, on the batches of ``tests/scripts/replicated_fit.py`` (float64, crops and
flips).
The suite checks the command line with two workers on ``cifar_cnn_max`` (tests/test_distributed.py); this covers
the synchronised BatchNorm across workers without the command line's cost. Run it by hand:

    python -m tests.scripts.multiworker_fit [ARCH]          # default resnet18

It prints each worker's largest difference from the single-device run over every weight and BatchNorm statistic.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from tests.test_distributed import free_ports


def worker(arch: str, out: str) -> None:
    """Train once, alone or as the worker TF_CONFIG names (``cnnlab_tf.distributed.start`` reads it), and save."""
    from cnnlab_tf.backend import BACKEND
    from tests.scripts.replicated_fit import trained
    weights, _ = trained(BACKEND, 1, arch)
    np.savez(out, **{name: np.asarray(value, np.float64) for name, value in weights.items()
                     if np.asarray(value).dtype.kind == "f"})


def main(arch: str = "resnet18") -> None:
    folder = Path(tempfile.mkdtemp())
    command = [sys.executable, "-m", "tests.scripts.multiworker_fit", "--worker", arch]
    subprocess.run([*command, str(folder / "single.npz")], check=True, capture_output=True)
    cluster = {"worker": [f"localhost:{port}" for port in free_ports(2)]}
    workers = [subprocess.Popen([*command, str(folder / f"worker{index}.npz")], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True, env={**os.environ, "TF_CONFIG": json.dumps(
                                    {"cluster": cluster, "task": {"type": "worker", "index": index}})})
               for index in (0, 1)]
    for process in workers:
        _, errors = process.communicate(timeout=600)
        assert process.returncode == 0, errors[-3000:]
    single = np.load(folder / "single.npz")
    for index in (0, 1):
        each = np.load(folder / f"worker{index}.npz")
        difference = max(float(np.abs(each[name] - single[name]).max()) for name in single.files)
        print(f"{arch}, worker {index} of 2: max |difference| from one device {difference:.3g} over "
              f"{len(single.files)} weights and BatchNorm statistics")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:  # a worker process, as main starts it
        worker(*sys.argv[2:])
    else:
        from shared.model.registry import ARCHITECTURES
        from shared.util.flags import OneLineParser, one_of, parse_or_exit

        parser = OneLineParser(prog="python -m tests.scripts.multiworker_fit", description=__doc__.splitlines()[0])
        parser.add_argument("arch", nargs="?", default="resnet18", type=one_of(sorted(ARCHITECTURES)),
                            help="the architecture (default: resnet18)")
        main(parse_or_exit(parser, None).arch)
