"""The latency statistics and the repeat rule (``shared.measure.latency``) on hand-made timings, and the training
memory's resident-set peak (``shared.measure.memory``) on a known allocation."""

import json
import subprocess
import sys

import numpy as np
import pytest

from shared.measure.latency import LatencyPlan, batch_latencies, calls_timed, latency_figures, time_calls


def test_median_and_95th_percentile_of_hand_made_timings():
    # 1..100 ms: the median is 50.5 ms; the 95th percentile interpolates between the 95th and 96th calls
    figures = latency_figures([index / 1000 for index in range(1, 101)])
    assert figures["median_seconds"] == pytest.approx(0.0505)
    assert figures["p95_seconds"] == pytest.approx(0.09505)
    assert figures["calls"] == 100
    # one slow call in twenty (a page fault, a scheduler hiccup) moves the 95th percentile, not the median: it lies
    # at position 0.95 * 19 = 18.05 of the sorted calls, 5% of the way from the 19th (1 ms) to the 20th (50 ms)
    spiky = latency_figures([0.001] * 19 + [0.05])
    assert spiky["median_seconds"] == 0.001 and spiky["p95_seconds"] == pytest.approx(0.001 + 0.05 * 0.049)
    with pytest.raises(AssertionError):
        latency_figures([])


def test_a_caption_counts_the_calls_in_words():
    assert calls_timed([41, 41], 3) == "41 calls after 3 warm-up calls"
    assert calls_timed([5, 41, 30], 3) == "5-41 calls after 3 warm-up calls"
    assert calls_timed([1], 1) == "1 call after 1 warm-up call"


class FakeClock:
    """Each call of the timed function advances the clock by ``step`` seconds."""

    def __init__(self, step: float):
        self.now, self.step, self.calls = 0.0, step, 0

    def __call__(self) -> float:
        return self.now

    def call(self) -> None:
        self.calls += 1
        self.now += self.step


@pytest.mark.parametrize("step, warmup, timed", [
    (1e-5, 3, 1000),  # a fast call stops at max_calls (0.4 s would be 40,000 calls)
    (0.01, 3, 40),  # 0.4 s of 10-ms calls: 40, above min_calls
    (0.1, 3, 30),  # min_calls decides: 30 calls, 3 s
    (0.4, 3, 20),  # max_seconds decides: 8 s pass at the 20th call; the warm-up reaches 1 s at its third
    (0.6, 2, 14),  # 8 s pass at the 14th call; two warm-up calls pass 1 s
    (2.0, 1, 5),  # a slow model stops at max_seconds once it has floor_calls: 5 calls, 10 s; one warm-up call
])
def test_the_plan_times_enough_calls_and_no_more(step, warmup, timed):
    plan = LatencyPlan(warmup_calls=3, warmup_seconds=1.0, min_calls=30, min_seconds=0.4, max_calls=1000,
                       max_seconds=8.0, floor_calls=5)
    clock = FakeClock(step)
    timings = time_calls(clock.call, plan, clock)
    assert len(timings) == timed, f"{step} s calls: {len(timings)} timed"
    assert clock.calls == timed + warmup, "the warm-up calls run first and are not timed"
    assert timings == pytest.approx([step] * timed)


def test_each_batch_is_timed_on_its_own_slice():
    seen = []
    plan = LatencyPlan(batches=(1, 4), warmup_calls=1, min_calls=2, min_seconds=0.0, max_calls=2)
    rows = batch_latencies(lambda batch: seen.append(len(batch)), np.zeros((4, 2, 2, 3), np.float32), plan)
    assert [row["batch"] for row in rows] == [1, 4] and all(row["calls"] == 2 for row in rows)
    assert seen == [1, 1, 1, 4, 4, 4], seen


# Run in a fresh process: in a test worker that has trained models, other threads (a framework's pools, the garbage
# of earlier tests) free memory while the block is written, and can cancel its rise in the resident set (seen once
# in the whole suite: a 64 MiB block raised the peak by 8 kB).
KNOWN_ALLOCATION = """
import json, numpy as np
from shared.measure.memory import DevicePeak, measure_peak
size = 64 * 2**20

def allocate():
    block = np.ones(size, np.uint8)  # written, so resident
    assert block.sum() == size

figures = measure_peak(allocate, DevicePeak(lambda: None, lambda: None, "none"))
print(json.dumps({"size": size, **figures}))
"""


def test_the_resident_peak_of_a_known_allocation():
    result = subprocess.run([sys.executable, "-c", KNOWN_ALLOCATION], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    if figures["rss_peak_since"] != "the steps":
        pytest.skip("the kernel does not let this process reset its resident-set peak")
    size, added = figures["size"], figures["rss_peak_bytes"] - figures["rss_before_bytes"]
    assert size * 0.95 <= added <= size * 1.5, f"64 MiB allocated, the peak rose by {added / 2**20:.1f} MiB"
    assert figures["device_peak_bytes"] is None
