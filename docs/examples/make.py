"""Regenerate the README's example artefacts: ``python docs/examples/make.py`` (about a minute on a CPU).

The curves, prediction grid, summary and report come from the default digits run. The pooling study and the
framework comparison run on a synthetic archive in the real CIFAR-100 format (the real one needs a download), so
their accuracies say nothing about CIFAR-100; the layout of the reports is what they show.
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def run(*args: str, cwd: Path = ROOT, **environment: str) -> None:
    subprocess.run([sys.executable, "-m", *args], check=True, cwd=cwd, env={**os.environ, **environment})


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from tests.helpers import write_cifar100_archive

    with tempfile.TemporaryDirectory() as temp:
        temp = Path(temp)
        run("cnnlab_torch.train", "--out", str(temp / "digits"))
        for name in ("curves.png", "predictions.png", "summary.txt", "classification_report.txt"):
            shutil.copy(temp / "digits" / name, HERE / name)
        archive = write_cifar100_archive(temp / "cifar-100-python.tar.gz", train_per_class=60, test_per_class=20)
        for framework in ("torch", "tf"):
            run(f"cnnlab_{framework}.train", "--experiment", "cifar100-pooling", "--data", str(archive), "--epochs",
                "8", "--out", str(temp / framework), CNNLAB_HOME=str(temp / "home"))
        shutil.copy(temp / "torch" / "comparison.md", HERE / "comparison.md")
        # Relative run names, so the report shows "torch" and "tf" rather than a temporary path.
        run("shared.compare", "torch", "tf", "--out", "compare", cwd=temp, CNNLAB_HOME=str(temp / "home"))
        shutil.copy(temp / "compare" / "compare.md", HERE / "compare.md")
        shutil.copy(temp / "compare" / "compare.png", HERE / "compare.png")


if __name__ == "__main__":
    main()
