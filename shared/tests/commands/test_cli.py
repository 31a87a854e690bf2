"""Bad flags on both train CLIs: one line naming the value and what is allowed, non-zero exit, no traceback.
Flags are checked before a framework is imported, so these run in a second or two."""

import argparse
import re
import subprocess
import sys
from dataclasses import dataclass

import pytest

from shared.commands.cli import flag_table
from shared.util import flags

ENTRY_POINTS = ["cnnlab_torch.train", "cnnlab_tf.train"]


def run_cli(module: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("module", ENTRY_POINTS)
@pytest.mark.parametrize("args, names", [
    (["--arch", "vgg16"], ["'vgg16'", "cifar_cnn_max", "flowers_baseline", "resnet18"]),
    (["--epochs", "0"], ["--epochs", "'0'", "positive"]),
    (["--batch-size", "-3"], ["--batch-size", "'-3'", "positive"]),
    (["--device", "tpu"], ["'tpu'", "auto, cpu, cuda"]),
    (["--lr", "inf"], ["--lr", "'inf'", "positive"]),
    (["--lr", "nan"], ["--lr", "'nan'", "positive"]),
    (["--seed", "-1"], ["--seed", "'-1'", "from 0"]),
    (["--resume", "/nowhere/run"], ["--resume /nowhere/run", "no such run directory"]),
    (["--precision", "16"], ["--precision", "'16'", "32-true, 64-true, bf16-mixed, 16-mixed"]),
    (["--no-feature-cache"], ["--no-feature-cache only applies to --experiment flowers-resnet18", "digits"]),
    (["--opset", "6"], ["--opset", "opset 6", "onnxruntime has no kernels", "from 7 to 18"]),
    (["--opset", "19"], ["--opset", "tf2onnx 1.17", "from 7 to 18"]),
], ids=["unknown-arch", "zero-epochs", "negative-batch", "unknown-device", "infinite-lr", "nan-lr", "negative-seed",
        "resume-nothing", "unknown-precision", "feature-cache-without-a-frozen-backbone", "opset-too-low",
        "opset-too-high"])
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
def test_the_docs_flag_table_and_help_name_the_same_flags(module):
    """The docs' flag reference is generated from ``flag_table()`` at build time (shared.tools.reference)."""
    result = run_cli(module, "--help")
    assert result.returncode == 0
    in_help = set(re.findall(r"^  (--[a-z-]+)", result.stdout, re.M)) - {"--help"}
    in_table = set(re.findall(r"^\| `(--[a-z-]+)`", flag_table(), re.M))
    assert in_help == in_table
    assert {"--experiment", "--arch", "--epochs", "--no-feature-cache", "--resume"} <= in_help  # the parse works


def test_a_new_declared_setting_becomes_a_flag_of_the_api_the_parser_and_the_resume_rules():
    @dataclass(frozen=True)
    class Extra:
        label_smoothing: float = flags.setting(0.0, "smoothing of the targets", flags.NON_NEGATIVE, resumable=True)
        momentum: float = 0.9  # a plain field: no flag

    parser = argparse.ArgumentParser()
    flags.add_flags(parser, Extra)
    assert parser.parse_args(["--label-smoothing", "0.1"]).label_smoothing == 0.1
    assert not hasattr(parser.parse_args([]), "momentum")
    assert flags.resumable(Extra) == ("--label-smoothing",)
    row = "| `--label-smoothing` | `0.0` | smoothing of the targets *(also with --resume)* |"
    assert row in flags.flag_table(Extra)
    with pytest.raises(SystemExit):
        parser.parse_args(["--label-smoothing", "-1"])


@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_out_inside_a_file_is_refused_before_any_work(module, tmp_path):
    (tmp_path / "file").write_text("not a folder")
    result = run_cli(module, "--out", str(tmp_path / "file" / "run"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{tmp_path / 'file'} is a file, not a folder" in result.stderr


def test_resume_refuses_flags_that_would_change_the_run(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "run.json").write_text("{}")
    result = run_cli("cnnlab_torch.train", "--resume", str(run_dir), "--lr=0.1")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "--lr: a resumed run keeps its own settings" in result.stderr


def test_a_damaged_run_json_is_one_line(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "run.json").write_text('{"framework": "torch", "experi')
    result = run_cli("cnnlab_torch.train", "--resume", str(run_dir))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{run_dir / 'run.json'} is damaged" in result.stderr


def test_ctrl_c_during_start_up_is_one_line_and_writes_nothing(tmp_path, capsys):
    from shared.commands.train import main

    def interrupted_import():
        raise KeyboardInterrupt  # as if Ctrl-C arrived while the framework was loading

    assert main("torch", interrupted_import, ["--out", str(tmp_path / "run")]) == 130
    err = capsys.readouterr().err
    assert "stopped during start-up" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_an_image_size_the_architecture_cannot_take_is_refused_before_the_data_is_read(tmp_path):
    result = run_cli("cnnlab_torch.train", "--experiment", "flowers", "--data", str(tmp_path / "nowhere"),
                     "--image-size", "7", "--out", str(tmp_path / "run"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--image-size: flowers_baseline needs an image size" in result.stderr, result.stderr
