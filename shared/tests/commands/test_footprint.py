"""``compare``'s footprint (``shared.measure.footprint``) on hand-made run folders and canned worker results: which
files are found and which are missing (with the command that writes them), which worker times what, how the
measurements land in the report's rows, and a failed worker that leaves the report standing. No framework runs."""

import json

import pytest

from shared.measure import footprint
from shared.measure.latency import LatencyPlan
from shared.formats.verified import file_record
from shared.report.measured import int8_change

CHECK = {"runtime": "ai-edge-litert 2.3.0", "checked_images": 359, "predictions_equal": 1.0,
         "accuracy_native": 0.9889, "accuracy_file": 0.9889, "max_abs_diff": 5.7e-06, "bound": 2e-4}
INT8_CHECK = {**CHECK, "predictions_equal": 0.9944, "accuracy_file": 0.9833, "max_abs_diff": 0.12}


def write_run(folder, framework, files, device="cpu"):
    """A finished run's folder with ``files`` (name -> bytes), a sidecar beside each mobile file."""
    folder.mkdir()
    metrics = {"framework": framework, "device": device, "status": "complete", "config": {"batch_size": 32},
               "onnx": {"max_abs_diff": 6.7e-06, "checked_images": 8}}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    for name, size in files.items():
        (folder / name).write_bytes(b"x" * size)
        if name.endswith((".tflite", ".pte")):
            quantize = "dynamic-int8" if "int8" in name else None
            sidecar = {"format": "litert" if name.endswith(".tflite") else "executorch", "quantize": quantize,
                       "check": INT8_CHECK if quantize else CHECK, "framework": framework, "arch": "cifar_cnn_max",
                       "classes": ["a", "b"], "image_size": 32, **file_record(folder / name)}
            (folder / f"{name}.json").write_text(json.dumps(sidecar))
    return folder, metrics


@pytest.fixture
def runs(tmp_path):
    torch_run = write_run(tmp_path / "torch", "torch", {"model.pt": 97_000, "weights.npz": 96_000,
                                                        "model.onnx": 95_000})
    tf_run = write_run(tmp_path / "tf", "tf", {"model.keras": 132_000, "weights.npz": 96_000, "model.onnx": 98_000,
                                               "model-int8.tflite": 30_000, "model.tflite": 99_000,
                                               "model.pte": 100_000})
    return torch_run, tf_run


def latency(median_ms: float, p95_ms: float) -> list[dict]:
    return [{"batch": batch, "median_seconds": batch * median_ms / 1000, "p95_seconds": batch * p95_ms / 1000,
             "calls": 100} for batch in (1, 32)]


def test_every_file_is_found_and_every_missing_one_named_with_its_command(runs):
    (torch_folder, torch_metrics), (tf_folder, tf_metrics) = runs
    torch_side, tf_side = footprint.measure([(torch_folder, torch_metrics), (tf_folder, tf_metrics)], workers=False)
    # the float file before its int8 version; the ExecuTorch file that PyTorch exported from the Keras run last
    assert [row["file"] for row in tf_side["runtimes"]] == ["model.keras", "model.onnx", "model.tflite",
                                                            "model-int8.tflite", "model.pte"]
    assert [row["bytes"] for row in tf_side["runtimes"]] == [132_000, 98_000, 99_000, 30_000, 100_000]
    assert tf_side["missing"] == [] and tf_side["weights_bytes"] == 96_000
    assert torch_side["missing"] == [{"file": "model.pte", "command": f"python -m cnnlab_torch.export "
                                                                      f"{torch_folder} --format executorch"}]
    # the ONNX file from training is checked by the run itself; the others by their sidecars
    onnx = torch_side["runtimes"][1]["check"]
    assert onnx["max_abs_diff"] == 6.7e-06 and onnx["checked_images"] == 8 and "training" in onnx["source"]
    assert tf_side["runtimes"][3]["quantize"] == "dynamic-int8"
    assert int8_change(tf_side)["points"] == pytest.approx(-0.56)
    assert int8_change(torch_side) is None


def test_a_keras_run_without_its_phone_files_gets_both_commands(tmp_path):
    folder, _ = write_run(tmp_path / "tf", "tf", {"model.keras": 1, "model.onnx": 1})
    assert [item["command"] for item in footprint.missing_exports(folder, "tf")] == [
        f"python -m cnnlab_tf.export {folder} --format litert",
        f"python -m cnnlab_tf.export {folder} --format litert --quantize dynamic-int8"]


def test_each_framework_times_its_own_model_and_executorch_goes_to_pytorch(runs):
    (torch_folder, torch_metrics), (tf_folder, tf_metrics) = runs
    tf_metrics["device"] = "cuda (NVIDIA H200)"
    sides = [{**footprint.describe_side(folder, metrics), "metrics": metrics}
             for folder, metrics in ((torch_folder, torch_metrics), (tf_folder, tf_metrics))]
    jobs = footprint.plan_jobs(sides, 2, LatencyPlan())
    assert list(jobs) == ["torch", "tf"], "PyTorch's worker first"
    assert jobs["torch"]["device"] == "cpu" and jobs["tf"]["device"] == "auto", "each on the device its run used"
    for framework, job in jobs.items():
        names = [task["task"] for task in job["tasks"]]
        assert names == sorted(names, key=lambda name: name != "train_memory"), f"{framework}: memory first, {names}"
    torch_latency = [task["args"] for task in jobs["torch"]["tasks"] if task["task"] == "run_latency"]
    assert [(args["run"], args["native"], args["files"]) for args in torch_latency] == [
        (str(torch_folder), True, ["model.onnx"]), (str(tf_folder), False, ["model.pte"])]
    tf_latency = next(task["args"] for task in jobs["tf"]["tasks"] if task["task"] == "run_latency")
    assert tf_latency["files"] == ["model.onnx", "model.tflite", "model-int8.tflite"] and tf_latency["threads"] == 2


def canned_workers(torch_folder, tf_folder) -> dict:
    memory = {"batch_size": 32, "steps": 4, "rss_before_bytes": 707e6, "rss_peak_bytes": 736e6,
              "rss_peak_since": "the steps", "device_peak_bytes": None, "device_peak_source": "x"}
    return {
        "torch": {"device": "cpu", "threads": 1, "results": [
            {"task": "train_memory", "args": {"run": str(torch_folder)}, "result": memory},
            {"task": "run_latency", "args": {"run": str(torch_folder)}, "result": {"runtimes": [
                {"format": "native", "file": "model.pt", "runtime": "torch 2.14", "latency": latency(0.148, 0.188)},
                {"format": "onnx", "file": "model.onnx", "runtime": "onnxruntime 1.32",
                 "latency": latency(0.036, 0.04)},
            ]}},
            {"task": "run_latency", "args": {"run": str(tf_folder)}, "result": {"runtimes": [
                {"format": "executorch", "file": "model.pte", "runtime": "executorch 1.5",
                 "latency": latency(0.0357, 0.0389)}]}}]},
        "tf": {"device": "cpu", "threads": 1, "results": [
            {"task": "train_memory", "args": {"run": str(tf_folder)}, "result": {**memory, "rss_peak_bytes": 767e6}},
            {"task": "run_latency", "args": {"run": str(tf_folder)}, "result": {"runtimes": [
                {"format": "native", "file": "model.keras", "runtime": "tf 2.21", "latency": latency(0.251, 0.311)},
                {"format": "onnx", "file": "model.onnx", "runtime": "onnxruntime 1.32",
                 "latency": latency(0.037, 0.04)},
                {"format": "litert", "file": "model.tflite", "runtime": "ai-edge-litert 2.3",
                 "latency": latency(0.0269, 0.0273)},
                {"format": "litert", "file": "model-int8.tflite", "error": "ValueError: damaged"}]}}]},
    }


def test_the_measurements_land_in_the_rows(runs):
    (torch_folder, torch_metrics), (tf_folder, tf_metrics) = runs
    sides = [{**footprint.describe_side(folder, metrics), "metrics": metrics}
             for folder, metrics in ((torch_folder, torch_metrics), (tf_folder, tf_metrics))]
    footprint.merge(sides, canned_workers(torch_folder, tf_folder), {})
    by_key = {"a": sides[0], "b": sides[1]}
    rows = {name: (a, b) for name, a, b in footprint.memory_rows(by_key)}
    assert rows["training step, peak resident set (batch 32)"] == ("736 MB (707 MB before the steps)",
                                                                   "767 MB (707 MB before the steps)")
    assert rows["training step, peak GPU memory"] == ("- (cpu)", "- (cpu)")
    assert rows["int8 file: accuracy change"][0] == "no int8 file"
    assert rows["int8 file: accuracy change"][1].startswith("-0.56 points (98.89% → 98.33%")
    table = "\n".join(footprint.latency_table(by_key, {"batches": [1, 32], "warmup_calls": 3}))
    assert "1 thread: milliseconds per call, median / 95th percentile of 100 calls" in table
    assert "| A | PyTorch (torch 2.14, cpu) | `model.pt` | 97 KB | 0.148 / 0.188 | 4.74 / 6.02 | - |" in table
    assert "| B | ExecuTorch: executorch 1.5 | `model.pte` | 100 KB | 0.0357 / 0.0389 |" in table, \
        "the .pte in the Keras run, timed by PyTorch's worker, is on the Keras run's side"
    assert "| B | LiteRT: ai-edge-litert 2.3 | `model.tflite` | 99 KB | 0.0269 / 0.0273 | 0.861 / 0.874 | same " \
           "class on 100.00% of 359 images, max \\|Δlogit\\| 5.7e-06 |" in table
    assert "| not measured | not measured |" in table and "Not measured: ValueError: damaged" in table
    assert f"- A `model.pte`: `python -m cnnlab_torch.export {torch_folder} --format executorch`" in table


def test_a_failed_worker_leaves_the_files_and_says_why(runs):
    (torch_folder, torch_metrics), (tf_folder, tf_metrics) = runs
    sides = [{**footprint.describe_side(folder, metrics), "metrics": metrics}
             for folder, metrics in ((torch_folder, torch_metrics), (tf_folder, tf_metrics))]
    workers = canned_workers(torch_folder, tf_folder)
    footprint.merge(sides, {"torch": workers["torch"]}, {"tf": "the tf worker failed with exit status 1:\nboom"})
    tf_side = sides[1]
    assert tf_side["memory"] == {"error": "the tf worker failed with exit status 1:\nboom"}
    assert all("error" in row for row in tf_side["runtimes"] if row["format"] != "executorch")
    assert "latency" in tf_side["runtimes"][-1], "PyTorch's worker still timed the .pte"
    table = "\n".join(footprint.latency_table({"a": sides[0], "b": tf_side}, {"batches": [1, 32],
                                                                             "warmup_calls": 3}))
    assert "Not measured: the tf worker failed with exit status 1: (its output is in compare.json)" in table
    assert "boom" not in table
