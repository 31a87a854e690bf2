"""The notebook's default for the fine-tuning lab (WEIGHTS = None, DOWNLOAD = True) fetches torchvision's own
ImageNet ResNet-18 checkpoint and checks it against torchvision's checksum: pinned against the installed torchvision,
so both stacks (ours and Colab's) check it."""

import json
from pathlib import Path

import pytest
import torchvision

from shared.formats import pretrained
from shared.util.download import DownloadError
from shared.util.errors import UsageError

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "lab1_flowers.ipynb"


def test_the_address_and_checksum_are_torchvision_s():
    published = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url
    assert pretrained.URL == published
    # torchvision names each checkpoint by the first 8 hex digits of its sha256 (torch.hub's check_hash reads them)
    assert published.rsplit("-", 1)[1] == f"{pretrained.SHA256_PREFIX}.pth"


def test_with_no_weights_given_the_download_is_that_file_checked_by_sha256(tmp_path, monkeypatch):
    asked = []

    def offline(url, target, algorithm, digest):
        asked.append((url, Path(target), algorithm, digest))
        raise DownloadError(f"cannot reach {url}")

    monkeypatch.setattr(pretrained, "download", offline)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no torchvision copy to fall back on
    with pytest.raises(UsageError, match="cannot reach"):
        pretrained.locate(tmp_path / "home", None, allow_download=True)
    assert asked == [(torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url,
                      tmp_path / "home" / "weights" / "resnet18-f37072fd.pth", "sha256", "f37072fd")]


def test_the_notebook_defaults_to_that_download():
    cells = ["".join(cell["source"]) for cell in json.loads(NOTEBOOK.read_text())["cells"]]
    parameters = next(cell for cell in cells if cell.startswith("DATA = "))
    assert "DOWNLOAD = True " in parameters and "WEIGHTS = None " in parameters
    fine_tuning = next(cell for cell in cells if 'experiment="flowers-resnet18"' in cell)
    assert "download=DOWNLOAD" in fine_tuning and "weights=WEIGHTS" in fine_tuning
