"""Regenerate the README's example artefacts: ``python docs/examples/make.py`` (about two minutes on a CPU).

The curves, prediction grid, summary and report come from the default digits run. The two CIFAR-100 studies and
the framework comparison run on a synthetic archive in the real CIFAR-100 format (the real one needs a download):
each class is a small shape at a random place, in a random colour (``tests.support.helpers.write_cifar100_archive``,
kind "glyph"). Their accuracies say nothing about CIFAR-100; the layout of the reports is what they show.
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


def copy_study(study: Path, target: Path) -> None:
    """A study's reports and figures in their relative places, so the report's links work; the model files
    (checkpoints, weights, ONNX) are left out of the examples."""
    shutil.rmtree(target, ignore_errors=True)
    for path in study.rglob("*"):
        relative = path.relative_to(study)
        wanted = path.suffix in (".md", ".png", ".txt") and "checkpoints" not in relative.parts
        if wanted and (not any(part.startswith("seed-") for part in relative.parts) or path.name == "curves.png"):
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target / relative)


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from tests.support.helpers import write_cifar100_archive

    with tempfile.TemporaryDirectory() as temp:
        temp = Path(temp)
        run("cnnlab_torch.train", "--out", str(temp / "digits"))
        for name in ("curves.png", "predictions.png", "summary.txt", "classification_report.txt"):
            shutil.copy(temp / "digits" / name, HERE / name)
        archive = write_cifar100_archive(temp / "cifar-100-python.tar.gz", train_per_class=100, test_per_class=30,
                                         kind="glyph")
        for framework in ("torch", "tf"):
            run(f"cnnlab_{framework}.train", "--experiment", "cifar100-pooling", "--data", str(archive), "--epochs",
                "30", "--out", str(temp / framework), CNNLAB_HOME=str(temp / "home"))
        copy_study(temp / "torch", HERE / "pooling")
        # The phone files of every variant, so that the comparison shows their sizes, latency and the int8 change
        for variant in ("cifar_cnn_stride", "cifar_cnn_max", "cifar_cnn_avg"):
            run("cnnlab_torch.export", str(temp / "torch" / variant), "--format", "executorch")
            for quantize in ([], ["--quantize", "dynamic-int8"]):
                run("cnnlab_tf.export", str(temp / "tf" / variant), "--format", "litert", *quantize)
        run("cnnlab_torch.train", "--experiment", "cifar100-improved", "--data", str(archive), "--epochs", "60",
            "--out", str(temp / "improved"), CNNLAB_HOME=str(temp / "home"))
        copy_study(temp / "improved", HERE / "improved")
        # Relative run names, so the report shows "torch" and "tf" rather than a temporary path.
        run("shared.compare", "torch", "tf", "--out", "compare", cwd=temp, CNNLAB_HOME=str(temp / "home"))
        shutil.copy(temp / "compare" / "compare.md", HERE / "compare.md")
        shutil.copy(temp / "compare" / "compare.png", HERE / "compare.png")


if __name__ == "__main__":
    main()
