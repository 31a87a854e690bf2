"""A saved file that cannot be read becomes one line: which file, what it should have been, what to do.

Loaders raise whatever their format's reader raises on a damaged file: ``torch.load`` an ``UnpicklingError`` or a
``RuntimeError`` from its zip reader, Keras a ``ValueError`` that says "File not found" for a file that is there,
NumPy a ``BadZipFile`` or an ``EOFError`` for a truncated archive. The user needs none of that, only the path.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from collections.abc import Iterator

from shared.util.errors import UsageError, WeightsError
from shared.util.paths import not_a_file


@contextlib.contextmanager
def reading(path: Path, what: str, remedy: str = "train the run again") -> Iterator[None]:
    """Inside the block, any failure to read ``path`` (``what``: "a PyTorch checkpoint") is a ``WeightsError``.
    A ``UsageError`` raised inside (a file for another model) passes unchanged: it already says what to do.
    ``remedy``: how else to get the file back (an exported file is exported again)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path} {not_a_file(path)}; expected {what}. Restore it from a copy, or {remedy}")
    try:
        yield
    except UsageError:
        raise
    except Exception as error:  # noqa: BLE001 - each reader has its own exceptions for a damaged file
        reason = (str(error).strip().splitlines() or [""])[0][:160]
        raise WeightsError(f"{path} cannot be read as {what}: {type(error).__name__}: {reason}. The file is "
                           f"damaged or truncated; restore it from a copy, or {remedy}") from None
