"""The pooling study in both frameworks, and ``shared.commands.compare`` setting the two side by side: same data, same
settings, near-identical models, and a report that shows it."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from shared.commands.compare import compare_runs, main as compare
from shared.measure.latency import LatencyPlan
from tests.support.helpers import write_cifar100_archive
from shared.formats.tolerances import MIN_ARGMAX_AGREEMENT, tolerance

# The slow half of the parity suite: it trains models (make test ARGS="parity_tests -m 'not training'" skips it)
pytestmark = pytest.mark.training


@pytest.fixture(scope="module")
def studies(tmp_path_factory):
    root = tmp_path_factory.mktemp("studies")
    archive = write_cifar100_archive(root / "cifar-100-python.tar.gz", 20, 10)
    environment = {**os.environ, "CNNLAB_HOME": str(root / "home")}
    for framework in ("torch", "tf"):
        result = subprocess.run([sys.executable, "-m", f"cnnlab_{framework}.train", "--experiment",
                                 "cifar100-pooling", "--data", str(archive), "--epochs", "2", "--out",
                                 str(root / framework)], capture_output=True, text=True, timeout=600,
                                env=environment)
        assert result.returncode == 0, result.stderr[-3000:]
    return root, environment


# A few calls per runtime: the suite checks that every row is measured, not the figures
QUICK = LatencyPlan(warmup_calls=1, min_calls=3, min_seconds=0.0, max_calls=3)


def test_compare_reports_every_variant_of_both_frameworks(studies, monkeypatch, capsys):
    root, environment = studies
    monkeypatch.setenv("CNNLAB_HOME", environment["CNNLAB_HOME"])
    compare_runs(root / "torch", root / "tf", root / "compare", threads=1, plan=QUICK)
    report = (root / "compare" / "compare.md").read_text()
    for text in ("cifar_cnn_stride", "cifar_cnn_max", "cifar_cnn_avg", "torch 2.", "tf 2.", "seconds per epoch",
                 "training images per second", "trainable parameters", "ONNX exports on the 30 validation images",
                 "training step, peak resident set (batch 32)", "Inference on this machine, 1 thread",
                 "## Theory section, measured", "*TensorFlow deploys to phones and many targets:*",
                 "Served over HTTP (cnnlab serve", "requests/s at 32 connections",
                 f"`python -m cnnlab_torch.export {root / 'torch' / 'cifar_cnn_max'} --format executorch`",
                 f"`python -m cnnlab_tf.export {root / 'tf' / 'cifar_cnn_avg'} --format litert --quantize "
                 f"dynamic-int8`"):
        assert text in report, f"{text!r} missing from compare.md"
    assert "not measured" not in report, report
    assert (root / "compare" / "compare.png").read_bytes()[:4] == b"\x89PNG"
    result = json.loads((root / "compare" / "compare.json").read_text())
    served = [entry["served"] for entry in result.values() if "served" in entry]
    assert len(served) == 1, "one model of each run is served"
    for figures in served[0].values():
        assert figures["cold_start_s"] > 0 and figures["resident_mb"] > 0 and figures["batched"]["errors"] == 0
        assert figures["batched"]["requests_per_second"] > 0 and figures["one_at_a_time"]["p99_ms"] > 0
    for variant, entry in result.items():
        for side in entry["footprint"]["sides"].values():
            memory = side["memory"]
            assert memory["rss_peak_bytes"] >= memory["rss_before_bytes"] > 0, f"{variant}: {memory}"
            assert [row["format"] for row in side["runtimes"]] == ["native", "onnx"], side["runtimes"]
            assert all(figures["calls"] == 3 and figures["p95_seconds"] >= figures["median_seconds"] > 0
                       for row in side["runtimes"] for figures in row["latency"]), side["runtimes"]
        runs = entry["runs"]
        assert runs["a"]["params_trainable"] == runs["b"]["params_trainable"] == 21_699
        onnx = entry["onnx"]
        assert onnx["argmax_agreement"] >= MIN_ARGMAX_AGREEMENT["32-true"], f"{variant}: {onnx}"
        # The same rule as the one-epoch digits check: trained_run, scaled by the largest logit.
        bound = tolerance("trained_run") * max(1.0, onnx["max_abs_logit"])
        assert onnx["max_abs_logit_diff"] <= bound, f"{variant}: ONNX logits differ by {onnx}, bound {bound:.3g}"


def test_compare_refuses_runs_of_different_data(studies, tmp_path, capsys):
    root, _ = studies
    other = tmp_path / "other"
    other.mkdir()
    metrics = json.loads((root / "tf" / "best" / "metrics.json").read_text())
    metrics["data"]["classes"] = ["apple", "pear"]
    (other / "metrics.json").write_text(json.dumps(metrics))
    assert compare([str(root / "torch" / "best"), str(other), "--out", str(tmp_path / "out")]) == 2
    assert "did not train the same model on the same data" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_damaged_onnx_file_is_one_line_that_says_how_to_write_it_again(studies, tmp_path, monkeypatch, capsys):
    root, environment = studies
    monkeypatch.setenv("CNNLAB_HOME", environment["CNNLAB_HOME"])
    runs = {}
    for framework in ("torch", "tf"):
        runs[framework] = tmp_path / framework
        shutil.copytree(root / framework / "cifar_cnn_max", runs[framework])
    onnx = runs["tf"] / "model.onnx"
    onnx.write_bytes(onnx.read_bytes()[:100])
    out = tmp_path / "out"
    assert compare([str(runs["torch"]), str(runs["tf"]), "--out", str(out), "--no-measure"]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "Traceback" not in error, error
    assert str(onnx) in error and f"python -m cnnlab_tf.export {runs['tf']} --format onnx" in error, error
    assert not out.exists()
