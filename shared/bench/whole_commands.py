"""The benchmark's whole-command figures (``python -m shared.bench``): what a user waits for at the command line.

- The default run's fixed cost: ``python -m cnnlab_<framework>.train`` with no flags, its wall time split into the
  phases its ``metrics.json`` records (``shared.util.timings``), each as a ratio to the epochs; the fixed cost is the
  wall time less the bare framework import (a ``python -c "import torch"`` process, timed alike) and the epochs.
- Every architecture at 32 px through both command lines: ``--arch A --epochs N`` on the digits, the steady epoch
  (the median after the first, from the run's history) and what the first epoch costs beyond it (tracing).

Each command runs in a process of its own, one at a time, so the two frameworks never share the CPU.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from shared.formats import history as keys
from shared.measure.worker import steady_seconds
from shared.util.timings import PHASES

FRAMEWORK_MODULES = {"torch": "torch", "tf": "tensorflow"}


def _timed(command: list[str]) -> float:
    """Wall seconds of a command, which must succeed; its output is dropped."""
    started = time.perf_counter()
    finished = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - started
    if finished.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed with exit status {finished.returncode}:\n"
                           f"{finished.stderr[-2000:]}")
    return seconds


def _train(framework: str, flags: list[str], out: Path) -> tuple[float, dict]:
    """Wall seconds of one training command and its metrics."""
    seconds = _timed([sys.executable, "-m", f"cnnlab_{framework}.train", *flags, "--out", str(out)])
    return seconds, json.loads((out / "metrics.json").read_text())


def default_run(framework: str, folder: Path, repeats: int, epochs: int | None = None) -> dict:
    """The default run's phases, from the repeat with the median wall time; ``epochs`` shortens it (smoke mode)."""
    bare = float(np.median([_timed([sys.executable, "-c", f"import {FRAMEWORK_MODULES[framework]}"])
                            for _ in range(repeats)]))
    flags = [] if epochs is None else ["--epochs", str(epochs)]
    runs = sorted((_train(framework, flags, folder / f"{framework}-default-{index}") for index in range(repeats)),
                  key=lambda run: run[0])
    wall, metrics = runs[len(runs) // 2]
    timings = metrics["timings"]
    # Before the run's clock started and after it stopped: the interpreter's start and the process's exit
    rest = wall - timings["total"] + timings["other"]
    return {"framework": framework, "wall": wall, "bare_import": bare,
            "phases": {**{name: timings[name] for name in PHASES}, "rest": rest},
            "fixed_cost": wall - bare - timings["epochs"], "arch": metrics["arch"],
            "epoch_seconds": [record[keys.SECONDS] for record in metrics["history"]]}


def small_images(framework: str, arch: str, folder: Path, epochs: int, default: dict) -> dict:
    """One architecture on the digits (32 px) through the command line: steady and first epoch, from the history.
    When that command is the ``default`` run's (its architecture, as many epochs), its epochs are reused."""
    if default["arch"] == arch and len(default["epoch_seconds"]) == epochs:
        seconds = default["epoch_seconds"]
    else:
        _, metrics = _train(framework, ["--arch", arch, "--epochs", str(epochs)], folder / f"{framework}-{arch}")
        seconds = [record[keys.SECONDS] for record in metrics["history"]]
    steady = steady_seconds(seconds)
    return {"steady_epoch": steady, "first_epoch": seconds[0], "first_epoch_extra": seconds[0] - steady}


def measure(archs: tuple[str, ...], folder: Path, repeats: int, epochs: int, default_epochs: int | None) -> dict:
    """Both figures for both frameworks (``shared.bench.main.FRAMEWORKS``' order: PyTorch first)."""
    frameworks = tuple(FRAMEWORK_MODULES)
    default = {framework: default_run(framework, folder, repeats, default_epochs) for framework in frameworks}
    rows = []
    for arch in archs:
        row: dict[str, Any] = {"arch": arch, **{framework: small_images(framework, arch, folder, epochs,
                                                                        default[framework])
                                                for framework in frameworks}}
        row["keras_vs_torch"] = row["tf"]["steady_epoch"] / row["torch"]["steady_epoch"]
        rows.append(row)
    return {"default_run": default, "small_images": {"image_size": 32, "epochs": epochs, "rows": rows}}


def format_tables(figures: dict, table) -> list[list[str]]:
    """The two sections of the text report; ``table`` is ``shared.bench.main``'s markdown-table helper."""
    names = {"torch": "PyTorch", "tf": "Keras"}
    header = ["framework", "wall s", "bare import s", *PHASES, "start and exit", "fixed cost / epochs"]
    rows = []
    for framework, entry in figures["default_run"].items():
        epochs = entry["phases"]["epochs"]
        rows.append([names[framework], f"{entry['wall']:.2f}", f"{entry['bare_import']:.2f}",
                     *(f"{seconds:.2f} ({seconds / epochs:.2f}x)" for seconds in entry["phases"].values()),
                     f"{entry['fixed_cost'] / epochs:.2f}x"])
    default = (["The default run (python -m cnnlab_<framework>.train): seconds per phase (shared.util.timings), and "
                "as a ratio to the epochs; the fixed cost is the wall time less the bare import and the epochs"]
               + table(header, rows))
    small = figures["small_images"]
    header = ["architecture", "PyTorch epoch s", "Keras epoch s", "Keras / PyTorch", "PyTorch first epoch extra s",
              "Keras first epoch extra s"]
    rows = [[row["arch"], f"{row['torch']['steady_epoch']:.3f}", f"{row['tf']['steady_epoch']:.3f}",
             f"{row['keras_vs_torch']:.2f}x", f"{row['torch']['first_epoch_extra']:.3f}",
             f"{row['tf']['first_epoch_extra']:.3f}"] for row in small["rows"]]
    small_section = ([f"Every architecture at {small['image_size']} px through both command lines (--arch A --epochs "
                      f"{small['epochs']} on the digits): the steady epoch, and the first epoch's extra cost"]
                     + table(header, rows))
    return [default, small_section]
