"""Downloads land atomically: checked before they take their final name, and nothing half-written is left when
the network is absent, the transfer breaks off or the checksum is wrong. Served from local files and a local HTTP
server, since tests have no network."""

import hashlib
import http.server
import threading
import zipfile

import pytest

from shared.data import cifar100, flowers
from shared.util.errors import UsageError
from shared.util.download import DownloadError, download
from tests.support.helpers import write_cifar100_archive, write_image_folder


def leftovers(folder):
    return sorted(path.name for path in folder.rglob("*") if "part" in path.name)


def test_download_checks_the_digest_and_moves_into_place(tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(b"cnnlab" * 1000)
    target = tmp_path / "out" / "file.bin"
    download(source.as_uri(), target, "md5", hashlib.md5(source.read_bytes()).hexdigest())
    assert target.read_bytes() == source.read_bytes() and not leftovers(tmp_path / "out")


def test_wrong_checksum_leaves_nothing(tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(b"not the published file")
    target = tmp_path / "out" / "file.bin"
    with pytest.raises(DownloadError, match="md5 is .*expected 0123"):
        download(source.as_uri(), target, "md5", "0123456789abcdef0123456789abcdef")
    assert not target.exists() and not leftovers(tmp_path / "out")


@pytest.fixture
def truncating_server():
    """An HTTP server that promises 100,000 bytes and sends 1,000, as a dropped connection does."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"x" * 1000)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/file"
    server.shutdown()


def test_truncated_download_leaves_nothing(tmp_path, truncating_server):
    target = tmp_path / "file.bin"
    with pytest.raises(DownloadError, match="broke off|stopped after"):
        download(truncating_server, target)
    assert not target.exists() and not leftovers(tmp_path)


def test_no_network_says_where_to_put_the_file(tmp_path):
    target = tmp_path / "cifar-100-python.tar.gz"
    with pytest.raises(DownloadError, match=f"without a network, download it elsewhere and put it at {target}"):
        download("http://127.0.0.1:9/cifar-100-python.tar.gz", target, timeout=5)
    assert not leftovers(tmp_path)


def test_flowers_archive_unpacks_its_class_folders_into_place(tmp_path):
    images = write_image_folder(tmp_path / "src" / "flowers", classes=flowers.CLASSES, per_class=2)
    archive = tmp_path / "flowers.zip"
    with zipfile.ZipFile(archive, "w") as zipped:  # the lab's archive wraps the classes in "flowers/"
        for path in images.rglob("*"):
            zipped.write(path, path.relative_to(images.parent))
    destination = tmp_path / "home" / "flowers"
    flowers.fetch(destination, archive.as_uri())
    assert sorted(path.name for path in destination.iterdir() if path.is_dir() and path.name[0] != ".") == \
        list(flowers.CLASSES)
    assert not leftovers(tmp_path / "home")


def test_corrupt_flowers_archive_is_refused_and_nothing_unpacked(tmp_path):
    archive = tmp_path / "bad.zip"
    archive.write_bytes(b"PK\x03\x04 this is not a zip archive")
    destination = tmp_path / "home" / "flowers"
    with pytest.raises(UsageError, match="not a complete zip archive"):
        flowers.fetch(destination, archive.as_uri())
    assert not destination.exists() and not leftovers(tmp_path / "home")


def test_cifar_download_with_the_wrong_md5_is_refused(tmp_path):
    served = write_cifar100_archive(tmp_path / "served" / cifar100.ARCHIVE, 1, 1)  # not the published file
    target = tmp_path / "home" / cifar100.ARCHIVE
    with pytest.raises(UsageError, match=f"md5 is .*expected {cifar100.MD5}"):
        cifar100.fetch(target, served.as_uri())
    assert not target.exists() and not leftovers(tmp_path / "home")
