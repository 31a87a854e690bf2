"""Bad flags on both train CLIs: one line naming the value and what is allowed, non-zero exit, no traceback.
Flags are checked before a framework is imported, so these run in a second or two."""

import subprocess
import sys

import pytest

ENTRY_POINTS = ["cnnlab_torch.train", "cnnlab_tf.train"]


def run_cli(module: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("module", ENTRY_POINTS)
@pytest.mark.parametrize("args, names", [
    (["--arch", "vgg16"], ["'vgg16'", "cifar_cnn_max", "flowers_baseline", "resnet18"]),
    (["--epochs", "0"], ["--epochs", "'0'", "positive"]),
    (["--batch-size", "-3"], ["--batch-size", "'-3'", "positive"]),
    (["--device", "tpu"], ["'tpu'", "auto, cpu, cuda"]),
], ids=["unknown-arch", "zero-epochs", "negative-batch", "unknown-device"])
def test_bad_flag_gets_one_line(module, args, names):
    result = run_cli(module, *args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got:\n{result.stderr}"
    assert "Traceback" not in result.stderr
    for name in names:
        assert name in lines[0], f"{name!r} missing from: {lines[0]}"


@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_existing_run_directory_is_never_overwritten(module, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "metrics.json").write_text("precious")
    result = run_cli(module, "--out", str(run_dir))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"{module}: error: run directory {run_dir} already exists and "
                                                  "is never overwritten; pass a new --out or move the old run away"]
    assert (run_dir / "metrics.json").read_text() == "precious"


@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_help_documents_every_flag(module):
    result = run_cli(module, "--help")
    assert result.returncode == 0
    for flag in ["--experiment", "--arch", "--data", "--download", "--image-size", "--classes", "--weights", "--epochs", "--batch-size", "--lr", "--val-fraction", "--seed", "--device",
                 "--out"]:
        assert flag in result.stdout
