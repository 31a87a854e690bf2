"""The flowers lab's archive: 5 classes (daisy, dandelion, rose, sunflower, tulip), one folder per class.

Its publisher gives no checksum, so ``fetch`` checks what it can: the download's length, every member's CRC
(``zipfile.testzip``) and the five class folders. It unpacks into a temporary folder beside the destination and
only then moves the result into place, so an interrupted fetch never leaves a half-unpacked dataset behind.
"""

from __future__ import annotations

import os
import tempfile
import time
import zipfile
from pathlib import Path

from shared.util.errors import UsageError
from shared.util.home import FLOWERS
from shared.util.download import DownloadError, download, move_into_place

URL = "https://www.dropbox.com/s/qmfzqc056oiwy8c/flowers.zip?dl=1"
CLASSES = ("daisy", "dandelion", "rose", "sunflower", "tulip")


def default_folder(home: Path) -> Path:
    return home / FLOWERS


def _class_root(unpacked: Path, archive: Path) -> Path:
    """The folder holding the class folders: the archive wraps them in a top folder ("flowers/")."""
    for candidate in [unpacked, *sorted(path for path in unpacked.rglob("*") if path.is_dir())]:
        if {path.name for path in candidate.iterdir() if path.is_dir()} >= set(CLASSES):
            return candidate
    raise DownloadError(f"{archive} is not the flowers archive: it does not hold the class folders "
                        f"{', '.join(CLASSES)}")


def _keep_dates(zipped: zipfile.ZipFile, unpacked: Path) -> None:
    """Give each file its date in the archive (``extractall`` stamps the time of unpacking), so that unpacking the
    same archive again gives the same folder fingerprint (shared.data.image_folder) and reuses its decoded cache."""
    for member in zipped.infolist():
        path = unpacked / member.filename
        if path.exists():
            stamp = time.mktime(member.date_time + (0, 0, -1))
            os.utime(path, (stamp, stamp))


def unpack(archive: Path, destination: Path) -> Path:
    """Check ``archive`` and unpack its class folders to ``destination``."""
    try:
        with zipfile.ZipFile(archive) as zipped:
            broken = zipped.testzip()
            if broken is not None:
                raise DownloadError(f"{archive}: member {broken} fails its CRC check; delete it and download again")
            with tempfile.TemporaryDirectory(dir=destination.parent, prefix=f".{destination.name}.part-") as temp:
                zipped.extractall(temp)
                _keep_dates(zipped, Path(temp))
                move_into_place(_class_root(Path(temp), archive), destination)
    except zipfile.BadZipFile as error:
        raise DownloadError(f"{archive} is not a complete zip archive ({error}); delete it and download again") \
            from None
    return destination


def fetch(destination: Path, url: str = URL) -> Path:
    """Download (unless already there) and unpack the lab's archive to ``destination``."""
    if destination.is_dir():
        return destination
    destination.parent.mkdir(parents=True, exist_ok=True)
    archive = destination.with_name("flowers.zip")
    try:
        if not archive.is_file():
            download(url, archive)
        unpack(archive, destination)
    except DownloadError as error:
        raise UsageError(str(error)) from None
    return destination
