"""The train command end to end on the embedded digits, in each backend, and what an interrupted run keeps."""

import re
import subprocess
import sys

import numpy as np

from shared.formats import rundir
from shared.data.dataset import Split, load_digits_rgb
from shared.formats.onnx_check import describe_signature, onnx_logits
from shared.model.registry import build_spec
from shared.commands.train import main
from shared.formats.tolerances import compare
from shared.formats.weights_io import load_weights
from tests.support.helpers import check_interrupted_run, check_run_directory, interrupting_backend, write_image_folder


def test_one_epoch_run_writes_a_complete_run_directory(backend, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(backend.framework, lambda: backend, ["--epochs", "1", "--out", str(run_dir)]) == 0
    # The terminal gets the validation report and a one-line train summary; the file gets both full reports.
    printed, report = capsys.readouterr().out, (run_dir / rundir.REPORT).read_text()
    assert "validation (359 images)" in printed and "train (1438 images)\n" not in printed
    assert "train (1438 images): accuracy " in printed and f"per class in {run_dir / rundir.REPORT}" in printed
    assert "train (1438 images)\n" in report and "validation (359 images)\n" in report
    metrics = check_run_directory(run_dir, backend.framework, backend.checkpoint_name, epochs=1)
    assert metrics["params_trainable"] == 23_498, "cifar_cnn_max with 10 digit classes, by hand: 2432+18496+2570"
    assert metrics["history"][0]["val_acc"] > 0.5, "one epoch on the digits learns well past chance (10%)"

    # The native checkpoint, the neutral weights and the ONNX export are the same model.
    spec = build_spec("cifar_cnn_max", 10, 32)
    val_images = load_digits_rgb().images[Split.from_json(rundir.read_split(run_dir)).val][:16]
    from_checkpoint = backend.build_model(spec)
    backend.load_checkpoint(from_checkpoint, run_dir / backend.checkpoint_name)
    from_neutral = backend.build_model(spec)
    backend.set_weights(from_neutral, spec, load_weights(run_dir / "weights.npz", spec))
    logits = backend.predict_logits(from_checkpoint, val_images, 16)
    assert np.array_equal(logits, backend.predict_logits(from_neutral, val_images, 16))
    within, difference, bound = compare(onnx_logits(run_dir / "model.onnx", val_images.astype(np.float32)),
                                        logits, "onnx_vs_native")
    assert within, f"ONNX differs from the checkpoint by {difference:.3g} (bound {bound:.3g})"


def test_interrupted_run_keeps_its_finished_epochs(backend, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(backend.framework, lambda: interrupting_backend(backend), ["--epochs", "3", "--out",
                                                                          str(run_dir)]) == 130
    check_interrupted_run(run_dir, backend.checkpoint_name, capsys.readouterr().err)


def test_compile_runs_on_the_cpu_and_trains_like_eager(backend, tmp_path):
    """--compile (torch.compile / XLA) takes the path a GPU takes, on the CPU. Compiled kernels may round in another
    order, so the two runs agree to the one-epoch noise floor, not bit for bit."""
    histories = {}
    for flags in ((), ("--compile",)):
        run_dir = tmp_path / ("compiled" if flags else "eager")
        assert main(backend.framework, lambda: backend, ["--epochs", "1", "--out", str(run_dir), *flags]) == 0
        metrics = rundir.read_json(run_dir / rundir.METRICS)
        assert metrics["compile"] is bool(flags) and metrics["config"]["compile"] is bool(flags)
        histories[bool(flags)] = [metrics["history"][0][key] for key in ("train_loss", "val_loss", "val_acc")]
    within, difference, bound = compare(np.array(histories[True]), np.array(histories[False]), "trained_run")
    assert within, f"--compile changed the one-epoch losses by {difference:.3g} (bound {bound:.3g})"


def test_opset_picks_the_exported_files_format(backend, tmp_path):
    run_dir = tmp_path / "run"
    assert main(backend.framework, lambda: backend, ["--epochs", "1", "--opset", "7", "--out", str(run_dir)]) == 0
    metrics = rundir.read_json(run_dir / rundir.METRICS)
    assert metrics["config"]["opset"] == 7
    assert describe_signature(run_dir / "model.onnx") == {
        "opset": 7, "ir_version": 4, "inputs": {"images": ["batch", 32, 32, 3]}, "outputs": {"logits": ["batch", 10]}}
    assert metrics["onnx"]["opset"] == 7, "the self-check ran on the opset-7 file"


def test_a_keras_run_prints_no_tensorflow_log_lines(tmp_path):
    """What a person reads at the command line: TensorFlow's C++ runtime logs through absl ("I0000 00:00:... file.cc:67]
    ..."), at start-up and, in TensorFlow 2.20 (Colab's), when tf2onnx runs Grappler at the export; none shows."""
    finished = subprocess.run([sys.executable, "-m", "cnnlab_tf.train", "--epochs", "1", "--out", str(tmp_path / "run")],
                              capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert re.findall(r"^[IWEF]\d{4} .*$", finished.stderr, re.MULTILINE) == []
    assert "absl::InitializeLog" not in finished.stderr


def test_mobilenet_v2_trains_on_the_digits_and_on_an_image_folder_at_224_px(backend, tmp_path):
    """The architecture phones run, at its native input size and at the digits' 32 px, in each framework."""
    folder = write_image_folder(tmp_path / "flowers", classes=("daisy", "rose"), per_class=4)
    for name, flags, size in (("digits", ["--experiment", "digits", "--batch-size", "64", "--val-fraction", "0.9"], 32),
                              ("folder", ["--experiment", "flowers", "--data", str(folder), "--image-size", "224",
                                          "--batch-size", "4", "--val-fraction", "0.25"], 224)):
        run_dir = tmp_path / name
        assert main(backend.framework, lambda: backend,
                    ["--arch", "mobilenet_v2", "--epochs", "1", *flags, "--out", str(run_dir)]) == 0
        metrics = check_run_directory(run_dir, backend.framework, backend.checkpoint_name, epochs=1)
        assert metrics["arch"] == "mobilenet_v2" and metrics["image_size"] == size
        assert np.isfinite(metrics["history"][0]["train_loss"])
