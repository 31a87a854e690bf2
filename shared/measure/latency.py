"""Inference latency as a phone app or a small service sees it: the seconds one call takes for one batch, warm, timed
call by call, and summarised by the median and the 95th percentile.

``compare`` and ``python -m shared.bench`` time every runtime through ``time_calls`` (their workers are
``shared.measure.footprint_worker``); ``latency_figures`` is the one home of the statistics.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import Any
from collections.abc import Callable

import numpy as np


@dataclass(frozen=True)
class LatencyPlan:
    batches: tuple[int, ...] = (1, 32)  # images per call: a phone's one frame, and a service's batch
    warmup_calls: int = 3  # untimed calls first: allocation, the runtime's first-call set-up, caches
    warmup_seconds: float = 1.0  # ... but one only, once the warm-up has lasted this long (a slow model)
    min_calls: int = 30  # timed calls at least, so that the 95th percentile is not simply the slowest call
    min_seconds: float = 0.25  # and calls go on until this much time has passed, for the fast models' sake
    max_calls: int = 1000  # ... but no more than this many
    max_seconds: float = 8.0  # a slow model stops here once it has ``floor_calls``; its call count says so
    floor_calls: int = 5

    def enough(self, calls: int, seconds: float) -> bool:
        """Whether ``calls`` timed calls, lasting ``seconds`` together, are enough."""
        if calls >= self.max_calls:
            return True
        if calls >= self.min_calls and seconds >= self.min_seconds:
            return True
        return calls >= self.floor_calls and seconds >= self.max_seconds


# compare's default; the benchmark's modes set their own (shared.bench.main.MODES)
DEFAULT_PLAN = LatencyPlan()


def calls_timed(calls: list[int], warmup_calls: int) -> str:
    """How many calls the figures of a table rest on, for its caption: "41 calls after 3 warm-up calls", or
    "5-41 calls ..." where the plan stopped a slow runtime sooner."""
    low, high = min(calls), max(calls)
    timed = f"{low} call{'s' if low != 1 else ''}" if low == high else f"{low}-{high} calls"
    return f"{timed} after {warmup_calls} warm-up call{'s' if warmup_calls != 1 else ''}"


def latency_figures(seconds: list[float]) -> dict:
    """The median and the 95th percentile (linear interpolation between the closest calls, NumPy's default) of
    per-call seconds, and how many calls they summarise."""
    assert len(seconds) > 0, "no timed calls"
    return {"median_seconds": float(np.median(seconds)), "p95_seconds": float(np.percentile(seconds, 95)),
            "calls": len(seconds)}


def time_calls(call: Callable[[], Any], plan: LatencyPlan, clock: Callable[[], float] = time.perf_counter
               ) -> list[float]:
    """Seconds of each timed call of ``call`` (which must return only once its result is on the host), after
    ``plan.warmup_calls`` untimed ones (fewer, at least one, past ``plan.warmup_seconds``), until the plan has
    enough."""
    started = clock()
    for _ in range(plan.warmup_calls):
        call()
        if clock() - started >= plan.warmup_seconds:
            break
    timings: list[float] = []
    while not plan.enough(len(timings), sum(timings)):
        started = clock()
        call()
        timings.append(clock() - started)
    return timings


def batch_latencies(predict: Callable[[np.ndarray], Any], images: np.ndarray, plan: LatencyPlan) -> list[dict]:
    """``latency_figures`` of ``predict`` on the first ``batch`` of ``images``, for each of the plan's batches."""
    rows = []
    for batch in plan.batches:
        assert len(images) >= batch, f"{len(images)} images for a batch of {batch}"
        part = np.ascontiguousarray(images[:batch])
        rows.append({"batch": batch, **latency_figures(time_calls(functools.partial(predict, part), plan))})
    return rows


def sample_images(count: int, image_size: int, seed: int = 0) -> np.ndarray:
    """Random float32 pixels in 0..255: a call costs the same whatever the pixels are."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (count, image_size, image_size, 3)).astype(np.float32)
