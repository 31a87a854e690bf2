"""Fetching a file from the internet safely: into a ``.part`` file, checked, and only then moved into place.

A download that is interrupted, truncated or has the wrong checksum leaves nothing behind under the final name, so a
later run never mistakes half a file for a dataset. Without a network the user gets one message that says where to
put the file by hand.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path

from shared.util import progress

from shared.util.errors import DownloadError

CHUNK = 1 << 20


def file_digest(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_digest(path: Path, algorithm: str, expected: str) -> None:
    """``expected`` may be a prefix (torchvision names its checkpoints by the first 8 hex digits of the sha256)."""
    actual = file_digest(path, algorithm)
    if not actual.startswith(expected):
        raise DownloadError(f"{path.name}: {algorithm} is {actual}, expected {expected}; the file is damaged or not "
                            f"the one published. Delete it and download again")


def download(url: str, destination: Path, algorithm: str | None = None, expected_digest: str | None = None,
             timeout: float = 30.0) -> Path:
    """Download ``url`` to ``destination`` atomically, checking its length and (if given) its digest."""
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    part = destination.with_name(f"{destination.name}.part")
    try:
        try:
            response = urllib.request.urlopen(url, timeout=timeout)
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise DownloadError(f"cannot download {url} ({reason}); without a network, download it elsewhere and "
                                f"put it at {destination}") from None
        length = response.headers.get("Content-Length")
        expected_size = int(length) if length else None
        try:
            with response, open(part, "wb") as handle, progress.bar(total=expected_size, unit="B", unit_scale=True,
                                                            desc=f"downloading {destination.name}",
                                                            leave=False) as bar:
                for chunk in iter(lambda: response.read(CHUNK), b""):
                    handle.write(chunk)
                    bar.update(len(chunk))
        except (http.client.IncompleteRead, OSError) as error:
            raise DownloadError(f"download of {url} broke off ({type(error).__name__}); run again to retry") \
                from None
        received = part.stat().st_size
        if expected_size is not None and received != expected_size:
            raise DownloadError(f"download of {url} stopped after {received:,} of {expected_size:,} bytes; "
                                f"run again to retry")
        if expected_digest:
            assert algorithm is not None, "an expected digest comes with the algorithm that made it"
            check_digest(part, algorithm, expected_digest)
        os.replace(part, destination)
    finally:
        part.unlink(missing_ok=True)
    return destination


def move_into_place(source: Path, destination: Path) -> None:
    """Rename a finished directory into place; a same-named leftover from an earlier failure is replaced."""
    if destination.exists():
        shutil.rmtree(destination)
    os.replace(source, destination)
