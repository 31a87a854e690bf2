"""The notebooks' setup cell (``python -m shared.tools.install``) adds cnnlab to a runtime and changes none of what
is there: checked on the Colab stack with pip's own dry-run report, as the cell runs on a fresh Colab runtime."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from shared.tools import install

# Google Colab's runtime (googlecolab/backend-info, pip-freeze.gpu.txt, "Upgrade to Python 3.13", 2026-08-19)
COLAB = {"torch": "2.11.0+cu128", "torchvision": "0.26.0+cu128", "tensorflow": "2.20.0", "keras": "3.13.2",
         "numpy": "2.1.3", "scikit-learn": "1.6.1", "tqdm": "4.67.3", "matplotlib": "3.10.0", "pillow": "11.3.0",
         "tensorboard": "2.20.0", "ipywidgets": "7.7.1", "ipykernel": "6.17.1", "protobuf": "5.29.6"}
# Colab's runtime before August 2026, on Python 3.12
OLDER_COLAB = {**COLAB, "torch": "2.8.0+cu126", "torchvision": "0.23.0+cu126", "tensorflow": "2.19.0",
               "keras": "3.10.0", "numpy": "2.0.2"}


def test_colab_s_versions_fit_cnnlab_s_ranges():
    assert install.conflicts(COLAB, install.requirements(("notebook",))) == []


def test_an_older_runtime_is_named_package_by_package():
    found = install.conflicts(OLDER_COLAB, install.requirements(("notebook",)))
    assert [line.split()[0] for line in found] == ["numpy", "torch", "torchvision", "tensorflow", "keras"]
    assert found[1].startswith("torch 2.8.0+cu126 is installed; cnnlab needs torch")


def test_an_older_runtime_stops_before_pip_with_what_to_do(monkeypatch, capsys):
    monkeypatch.setattr(install, "installed_versions", lambda: dict(OLDER_COLAB))
    monkeypatch.setattr(subprocess, "run", lambda *args, **kwargs: pytest.fail("pip ran"))
    assert install.main([]) == 2
    message = capsys.readouterr().err
    assert "torch 2.8.0+cu126 is installed" in message and "Runtime version: Latest" in message
    assert "constraints.txt" in message and "Traceback" not in message


def test_every_installed_package_is_held_at_its_version():
    assert install.keep_constraints({"torch": "2.11.0+cu128", "ml-dtypes": "0.6.0"}) == (
        "ml-dtypes==0.6.0\ntorch==2.11.0+cu128\n")
    assert install.canonical("ML_Dtypes") == install.canonical("ml.dtypes") == "ml-dtypes"


def _report_installs(report: Path) -> dict[str, str]:
    return {install.canonical(item["metadata"]["name"]): item["metadata"]["version"]
            for item in json.loads(report.read_text())["install"]}


def test_installing_again_here_changes_nothing(tmp_path):
    """Live, on whichever stack runs the suite: everything is there, so pip would add cnnlab alone."""
    report = tmp_path / "report.json"
    finished = subprocess.run([sys.executable, "-m", "shared.tools.install", "--report", str(report)],
                              cwd=install.ROOT, capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr
    assert set(_report_installs(report)) <= {"cnnlab"}


def test_on_a_fresh_colab_runtime_pip_adds_only_what_colab_lacks():
    """The report ``make test STACK=colab`` records after installing Colab's packages alone, before cnnlab's."""
    report = Path(sys.prefix) / "colab-install-report.json"
    if not report.is_file():
        pytest.skip("only the Colab stack's venv records the report: make test STACK=colab")
    runtime = {}
    for line in (Path(sys.prefix) / "colab-runtime.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            runtime[install.canonical(name)] = version
    added = _report_installs(report)
    assert {"onnx", "onnxruntime", "tf2onnx", "ai-edge-litert", "cnnlab"} <= set(added)
    assert {name: (runtime[name], version) for name, version in added.items() if name in runtime} == {}


def test_the_wheel_ships_the_packages_and_no_tests(tmp_path):
    """Built from a copy of the sources, so that no earlier build/ folder adds stale files."""
    source = tmp_path / "source"
    for name in ("pyproject.toml", "README.md"):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(install.ROOT / name, source / name)
    for package in ("shared", "cnnlab_torch", "cnnlab_tf"):
        shutil.copytree(install.ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                            "--wheel-dir", str(tmp_path / "wheel"), str(source)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    names = zipfile.ZipFile(next((tmp_path / "wheel").glob("cnnlab-*.whl"))).namelist()
    assert [name for name in names if "/tests/" in name or name.startswith("tests/")] == []
    assert {"shared/run/runner.py", "shared/tools/install.py", "cnnlab_torch/engine.py",
            "cnnlab_tf/engine.py", "shared/bench/__main__.py"} <= set(names)
