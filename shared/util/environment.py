"""What a run or a notebook runs on, read without importing a framework: the versions and the GPU."""

from __future__ import annotations

import importlib.metadata
import platform
import shutil
import subprocess

PACKAGES = ("torch", "torchvision", "tensorflow", "keras", "numpy")


def package_versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    """Installed versions (None where a package is missing)."""
    versions: dict[str, str | None] = {}
    for package in packages:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def gpus() -> list[str]:
    """The NVIDIA GPUs as the driver lists them (``nvidia-smi -L``); none without a driver."""
    if shutil.which("nvidia-smi") is None:
        return []
    listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True)
    return [line.strip() for line in listed.stdout.splitlines() if line.strip()] if listed.returncode == 0 else []


def describe() -> str:
    """Python, the framework versions and the GPUs, in a few lines for a notebook's first output."""
    versions = package_versions()
    found = ", ".join(f"{name} {version or 'not installed'}" for name, version in versions.items())
    lines = [f"Python {platform.python_version()}: {found}"]
    lines += gpus() or ["No GPU: both frameworks train on the CPU (in Colab: Runtime > Change runtime type > GPU)."]
    return "\n".join(lines)
