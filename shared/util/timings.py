"""Where a run's time goes: the process's wall time split into named phases, for ``metrics.json``'s ``timings`` and
the benchmark's fixed-cost line (``python -m shared.bench``).

Phases:
- ``import``: loading the framework and the backend's modules;
- ``start_up``: everything else before the first epoch (flags, data, the model, its initial weights, the optimizer);
- ``epochs``: training and validation, the history's own seconds;
- ``checkpoints``: the per-epoch writes (checkpoint, metrics, TensorBoard, a curve drawn during a long run);
- ``export``: the ONNX file and its self-check;
- ``reports``: the classification reports, the prediction grid and the curves drawn at the end;
- ``other``: the rest of the wall time (e.g. moving the training set to the device before the first epoch).

The wall time of the command line counts from the moment cnnlab's entry point loaded (``PROCESS_START``); the
interpreter's own start, some tens of milliseconds, comes before it. Of a study, each model's ``timings`` count from
where the previous model's ended, so the models' totals add up to the process's.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

PROCESS_START = time.perf_counter()  # imported by the runner, which the entry points import first

PHASES = ("import", "start_up", "epochs", "checkpoints", "export", "reports")


class Timings:
    """Seconds per phase since ``started``. A phase is timed around its code (``phase``), added from another clock
    (``add``), or is what ``lap`` finds unaccounted for since the last lap; ``take`` hands the phases over and
    starts counting afresh."""

    def __init__(self, started: float | None = None):
        self._started = time.perf_counter() if started is None else started
        self._lap = self._started
        self._seconds = dict.fromkeys(PHASES, 0.0)
        self._since_lap = 0.0  # seconds given to phases since the last lap

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        began = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - began)

    def add(self, name: str, seconds: float) -> None:
        assert name in PHASES, f"unknown phase {name!r}; the phases are {PHASES}"
        self._seconds[name] += seconds
        self._since_lap += seconds

    def lap(self, name: str) -> None:
        """Give ``name`` the time since the last lap (or the start) that no phase took."""
        now = time.perf_counter()
        self.add(name, max(now - self._lap - self._since_lap, 0.0))
        self._lap, self._since_lap = now, 0.0

    def take(self) -> dict:
        """The phases so far, ``other`` and ``total`` (wall seconds), rounded to the millisecond; then zero."""
        now = time.perf_counter()
        total = now - self._started
        taken = {name: round(seconds, 3) for name, seconds in self._seconds.items()}
        taken.update(other=round(max(total - sum(self._seconds.values()), 0.0), 3), total=round(total, 3))
        self._started = self._lap = now
        self._seconds, self._since_lap = dict.fromkeys(PHASES, 0.0), 0.0
        return taken

