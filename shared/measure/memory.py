"""The memory a training process holds: the CPU resident set, read from the kernel, and the framework's own peak on
a GPU. ``compare``'s worker (``shared.measure.footprint_worker``) measures a run's training steps with them in a
fresh process.

The resident set's peak (``VmHWM``) can be reset on Linux by writing 5 to ``/proc/self/clear_refs``, so the peak of
the steps alone is measured, not the import's or the data loading's. Where that is refused, the peak since the
process started (``getrusage``'s ``ru_maxrss``) is what is left, and the result says so.
"""

from __future__ import annotations

import resource
import sys
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable

STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_bytes(field: str) -> int | None:
    """A ``/proc/self/status`` field in bytes (the kernel writes kB); None off Linux."""
    try:
        for line in STATUS.read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _max_rss_bytes() -> int:
    # ru_maxrss is in kilobytes on Linux and in bytes on macOS
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def resident_bytes() -> int:
    """The process's resident set now (its peak so far, where the current one cannot be read)."""
    return _status_bytes("VmRSS") or _max_rss_bytes()


def reset_peak() -> bool:
    """Start the resident set's peak again from the current resident set; False where the kernel refuses."""
    try:
        CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def peak_bytes() -> int:
    """The resident set's peak since the last ``reset_peak`` (or since the process started)."""
    return _status_bytes("VmHWM") or _max_rss_bytes()


@dataclass(frozen=True)
class DevicePeak:
    """A framework's peak of GPU memory: ``reset()`` before the steps, ``read()`` after (bytes, None on a CPU), and
    what it reads, in words (``torch.cuda.max_memory_allocated``)."""
    reset: Callable[[], None]
    read: Callable[[], int | None]
    source: str


def measure_peak(work: Callable[[], None], device: DevicePeak) -> dict:
    """Run ``work`` and return the process's resident set before it and its peak during it, and the device's peak."""
    before = resident_bytes()
    reset = reset_peak()
    device.reset()
    work()
    return {"rss_before_bytes": before, "rss_peak_bytes": max(peak_bytes(), before),
            "rss_peak_since": "the steps" if reset else "the process started",
            "device_peak_bytes": device.read(), "device_peak_source": device.source}
