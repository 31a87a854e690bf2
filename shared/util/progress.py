"""Progress bars, in one place: a widget in notebooks and a text bar in terminals (tqdm.auto), and none at all in
the processes of a distributed run other than rank 0 (``quiet``), which would each draw their own."""

from __future__ import annotations

from tqdm.auto import tqdm

_shown = True


def quiet() -> None:
    global _shown
    _shown = False


def bar(*args, **kwargs) -> tqdm:
    return tqdm(*args, disable=not _shown, **kwargs)


def write(line: str) -> None:
    """A line above the bars (print would break the bar being drawn)."""
    if _shown:
        tqdm.write(line)
