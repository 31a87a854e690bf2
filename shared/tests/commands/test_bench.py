"""``python -m shared.bench``: the plan, the ratio arithmetic and the table from canned worker timings, and one real
run of both workers in the tiny ``--smoke`` mode."""

import json
import math
import subprocess
import sys

import pytest

from shared.bench import whole_commands
from shared.bench.main import MODES, build_report, format_report, latency_plan, plan
from shared.measure.worker import steady_seconds
from shared.model.flops import train_step_flops
from shared.model.registry import ARCHITECTURES, build_spec

LOOP = {"arch": "cifar_cnn_max", "classes": 5, "image_size": 32, "batch_size": 4, "steps": 2, "repeats": 3}
FEATURES = {"arch": "cifar_cnn_max", "classes": 5, "image_size": 32, "batch_size": 4, "trainable": ["fc."],
            "first_trainable": "fc", "train_images": 8, "val_images": 4, "repeats": 3}
PIPELINE = {"images": 6, "classes": 5, "image_size": 32, "batch_size": 4, "repeats": 3}
MATMUL_SECONDS = [0.0012, 0.001, 0.0015]  # a 256x256 matmul; the fastest gives 2 * 256**3 / 0.001 = 33.55 GFLOP/s


def worker(framework: str, cnnlab: list[float], validation: list[float], reference: list[float]) -> dict:
    """A worker's result file with round numbers; the first epoch of each loop is a slow warm-up to be ignored."""
    results = [
        {"task": "matmul", "args": {"size": 256, "repeats": 3}, "result": {"seconds": MATMUL_SECONDS}},
        {"task": "cnnlab_loop", "args": LOOP, "result": {"epoch_seconds": cnnlab, "validation_seconds": validation}},
        {"task": "reference_loop", "args": LOOP, "result": {"epoch_seconds": reference}},
        {"task": "feature_cache", "args": FEATURES,
         "result": {"full_epoch_seconds": [9.0, 2.0, 2.0, 2.0], "feature_seconds": 1.5,
                    "head_epoch_seconds": [1.0, 0.1, 0.1, 0.1]}},
    ]
    if framework == "torch":
        results.append({"task": "data_pipeline", "args": PIPELINE,
                        "result": {"seed_epoch_seconds": [3.0, 2.0, 2.1, 1.9], "cnnlab_decode_seconds": 4.5,
                                   "cnnlab_load_seconds": 0.2, "cnnlab_epoch_seconds": [0.1, 0.05, 0.05, 0.05]}})
    return {"framework": framework, "version": "0", "device": "cpu", "results": results}


@pytest.fixture
def canned():
    workers = {"torch": worker("torch", [9.0, 2.3, 2.1, 2.5], [0.1, 0.5, 0.05], [5.0, 1.0, 0.8, 1.2]),
               "tf": worker("tf", [20.0, 4.5, 4.3, 4.7], [0.3, 0.3, 0.3], [30.0, 6.0, 6.0, 6.0])}
    return build_report(MODES["smoke"], "cpu", workers, COMMANDS, 12.0)


def _default_run(wall: float, bare: float, epochs: float) -> dict:
    phases = {"import": 1.0, "start_up": 0.2, "epochs": epochs, "checkpoints": 0.1, "export": 0.1, "reports": 0.4,
              "rest": 0.2}
    return {"framework": "torch", "wall": wall, "bare_import": bare, "phases": phases,
            "fixed_cost": wall - bare - epochs}


COMMANDS = {"default_run": {"torch": _default_run(4.0, 1.5, 2.0), "tf": _default_run(6.0, 3.0, 2.5)},
            "small_images": {"image_size": 32, "epochs": 2, "rows": [
                {"arch": "cifar_cnn_max",
                 "torch": {"steady_epoch": 0.1, "first_epoch": 0.12, "first_epoch_extra": 0.02},
                 "tf": {"steady_epoch": 0.2, "first_epoch": 1.0, "first_epoch_extra": 0.8}, "keras_vs_torch": 2.0}]}}


def test_the_default_runs_fixed_cost_is_its_wall_time_less_the_bare_import_and_the_epochs(monkeypatch, tmp_path):
    walls = iter([1.7, 1.5, 1.6])  # three bare imports: the median is 1.6
    monkeypatch.setattr(whole_commands, "_timed", lambda command: next(walls))
    timings = {"import": 1.4, "start_up": 0.2, "epochs": 1.0, "checkpoints": 0.05, "export": 0.05, "reports": 0.5,
               "other": 0.1, "total": 3.3}
    metrics = {"timings": timings, "arch": "cifar_cnn_max", "history": [{"seconds": 0.6}, {"seconds": 0.4}]}
    runs = iter([(4.0, metrics), (3.6, metrics), (5.0, metrics)])
    monkeypatch.setattr(whole_commands, "_train", lambda framework, flags, out: next(runs))
    figures = whole_commands.default_run("torch", tmp_path, repeats=3)
    assert figures["wall"] == 4.0 and figures["bare_import"] == 1.6  # the median run, the median import
    assert figures["fixed_cost"] == pytest.approx(4.0 - 1.6 - 1.0)
    # the interpreter's start and exit: the wall time outside the run's clock, plus what the clock left unassigned
    assert figures["phases"]["rest"] == pytest.approx(4.0 - 3.3 + 0.1)
    # the same command as a 32-px row (the default architecture, as many epochs) is not run a second time
    monkeypatch.setattr(whole_commands, "_train", lambda framework, flags, out: pytest.fail("trained again"))
    row = whole_commands.small_images("torch", "cifar_cnn_max", tmp_path, 2, figures)
    assert row["first_epoch"] == 0.6 and row["steady_epoch"] == 0.4


def test_steady_state_is_the_median_after_the_warm_up_epoch():
    assert steady_seconds([100.0, 2.2, 2.0, 2.4]) == 2.2
    with pytest.raises(AssertionError):
        steady_seconds([1.0])


def test_ratios_from_canned_timings(canned):
    ratios = canned["ratios"]
    # torch: (median(2.3, 2.1, 2.5) - median(0.1, 0.5, 0.05) validation) / 2 steps = 1.1 s/step; the bare loop's
    # 1.0 / 2 = 0.5 s/step
    assert canned["training"][0]["torch"]["cnnlab_step_seconds"] == pytest.approx(1.1)
    assert ratios["cnnlab_vs_reference"]["torch"]["cifar_cnn_max"] == pytest.approx(2.2)
    # Keras: (4.5 - 0.3) / 2 = 2.1 s/step against model.fit's 6.0 / 2 = 3.0
    assert ratios["cnnlab_vs_reference"]["tf"]["cifar_cnn_max"] == pytest.approx(0.7)
    assert ratios["keras_vs_torch"]["cifar_cnn_max"] == pytest.approx(2.1 / 1.1)
    peak = 2 * 256 ** 3 / 0.001
    step_flops = train_step_flops(build_spec("cifar_cnn_max", 5, 32), 4)
    assert ratios["flops_vs_peak"]["torch"]["cifar_cnn_max"] == pytest.approx(step_flops / 1.1 / peak)
    assert ratios["flops_vs_peak"]["tf"]["cifar_cnn_max"] == pytest.approx(step_flops / 2.1 / peak)
    # Feature cache: 2.0 s against 0.1 s an epoch; 5 epochs: 10 s against 1.5 + 5 * 0.1 = 2 s
    assert ratios["feature_cache_speedup"]["torch"] == pytest.approx({"epoch": 20.0, "run": 5.0})
    # Decode cache: 2.0 s against 0.05 s an epoch; 10 epochs: 20 s against 4.5 + 10 * 0.05 = 5 s
    assert ratios["decode_cache_speedup"] == pytest.approx({"epoch": 40.0, "first_run": 4.0})


def test_the_table_shows_every_ratio(canned):
    text = format_report(canned)
    header = text.split("\n\n")[0]
    assert all(word in header for word in ("cores", "torch", "torchvision", "tensorflow", "keras", "GFLOP/s")), header
    training = next(section for section in text.split("\n\n") if section.startswith("Training"))
    row = next(line for line in training.splitlines() if line.startswith("| cifar_cnn_max"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[4:11] == ["1100.0", "500.0", "2.20x", "2100.0", "3000.0", "0.70x", "1.91x"], cells
    assert "| PyTorch | 2.000 | 1.500 | 0.1000 | 20.00x | 5.00x |" in text
    assert "| speed-up |  | 40.00x | 4.00x |" in text
    assert ("| PyTorch | 4.00 | 1.50 | 1.00 (0.50x) | 0.20 (0.10x) | 2.00 (1.00x) | 0.10 (0.05x) | 0.10 (0.05x) | "
            "0.40 (0.20x) | 0.20 (0.10x) | 0.25x |") in text
    assert "| cifar_cnn_max | 0.100 | 0.200 | 2.00x | 0.020 | 0.800 |" in text


def test_the_plan_covers_every_architecture_and_caps_the_quick_sizes():
    tasks = plan(MODES["quick"])
    loops = [task["args"] for task in tasks["tf"] if task["task"] == "cnnlab_loop"]
    assert [loop["arch"] for loop in loops] == list(ARCHITECTURES)
    sizes = {loop["arch"]: loop["image_size"] for loop in loops}
    assert sizes["resnet18"] == sizes["flowers_baseline"] == 64 and sizes["cifar_cnn_max"] == 32, sizes
    assert {loop["arch"]: loop["image_size"] for loop in (task["args"] for task in plan(MODES["full"])["tf"]
                                                          if task["task"] == "cnnlab_loop")}["resnet18"] == 224
    assert all(MODES["quick"].min_steps <= loop["steps"] <= MODES["quick"].max_steps for loop in loops)
    names = {framework: [task["task"] for task in tasks[framework]] for framework in tasks}
    assert names["torch"] == names["tf"] + ["data_pipeline"]  # torchvision's pipeline: PyTorch's worker only
    feature = next(task["args"] for task in tasks["tf"] if task["task"] == "feature_cache")
    assert (feature["arch"], feature["first_trainable"]) == ("resnet18", "fc")


def export_latency(framework: str, rows: list[dict]) -> dict:
    """A latency worker's result file: one architecture, each runtime at batch 1 and 32."""
    args = {"arch": "cifar_cnn_max", "classes": 5, "image_size": 32, "threads": 1,
            "plan": {"batches": [1, 32], "warmup_calls": 3}}
    return {"framework": framework, "version": "0", "device": "cpu", "threads": 1,
            "results": [{"task": "export_latency", "args": args, "result": {"runtimes": rows}}]}


def timed(format_name: str, milliseconds: float, size: int | None = None, quantize: str | None = None) -> dict:
    row = {"format": format_name, "quantize": quantize, "file": f"model.{format_name}", "runtime": "r",
           "latency": [{"batch": batch, "median_seconds": batch * milliseconds / 1000,
                        "p95_seconds": 2 * batch * milliseconds / 1000, "calls": 40 + batch} for batch in (1, 32)]}
    return {**row, "bytes": size} if size else row


def test_the_latency_tables_have_a_column_per_runtime():
    latency = {"torch": export_latency("torch", [timed("native", 0.15), timed("onnx", 0.036, 95_000),
                                                 timed("executorch", 0.0357, 100_000)]),
               "tf": export_latency("tf", [timed("native", 0.25), timed("onnx", 0.037, 98_000),
                                           timed("litert", 0.027, 99_000),
                                           {"format": "litert", "quantize": "dynamic-int8", "file": "model-int8.tflite",
                                            "error": "export failed: ValueError: no"}])}
    report = build_report(MODES["quick"], "cpu", None, None, 3.0, latency)
    assert "training" not in report and report["devices"] == {"torch": "cpu", "tf": "cpu"}
    sections = format_report(report).split("\n\n")
    assert len(sections) == 1 + 3 + 1, "the header, batch 1, batch 32, the sizes, the failure"
    batch_1 = sections[1].splitlines()
    assert batch_1[0].startswith("Inference latency, batch 1, 1 thread: ms per call, median / 95th percentile of "
                                 "41 calls after 3 warm-up calls")
    assert batch_1[1] == ("| architecture | px | PyTorch | onnxruntime (PyTorch's ONNX) | ExecuTorch | Keras | "
                          "onnxruntime (Keras's ONNX) | LiteRT | LiteRT dynamic-int8 |")
    assert batch_1[3] == ("| cifar_cnn_max | 32 | 0.15 / 0.3 | 0.036 / 0.072 | 0.0357 / 0.0714 | 0.25 / 0.5 | "
                          "0.037 / 0.074 | 0.027 / 0.054 | failed |")
    assert sections[2].splitlines()[3].startswith("| cifar_cnn_max | 32 | 4.8 / 9.6 |")
    assert sections[3].splitlines()[1:4:2] == [
        "| architecture | px | ONNX (PyTorch) | ExecuTorch (PyTorch) | ONNX (Keras) | LiteRT (Keras) | LiteRT "
        "dynamic-int8 (Keras) |", "| cifar_cnn_max | 32 | 0.10 | 0.10 | 0.10 | 0.10 | - |"]
    assert sections[4] == "Failed:\ncifar_cnn_max LiteRT dynamic-int8: export failed: ValueError: no"


def test_the_latency_plan_times_every_architecture_in_both_frameworks():
    tasks = latency_plan(MODES["quick"], 2)
    for framework in ("torch", "tf"):
        assert [task["args"]["arch"] for task in tasks[framework]] == list(ARCHITECTURES)
        assert {task["args"]["threads"] for task in tasks[framework]} == {2}
    assert {task["args"]["arch"]: task["args"]["image_size"] for task in tasks["tf"]}["resnet18"] == 64


def leaves(tree, path=()):
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from leaves(value, path + (key,))
    else:
        yield path, tree


def test_smoke_run_of_both_workers(tmp_path, homes):
    out = tmp_path / "bench.json"
    run = subprocess.run([sys.executable, "-m", "shared.bench", "--smoke", "--device", "cpu", "--json", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.startswith("cnnlab benchmark, smoke mode"), run.stdout
    report = json.loads(out.read_text())
    ratios = dict(leaves(report["ratios"]))
    expected = {("cnnlab_vs_reference", "torch", "cifar_cnn_max"), ("cnnlab_vs_reference", "tf", "cifar_cnn_max"),
                ("keras_vs_torch", "cifar_cnn_max"), ("flops_vs_peak", "torch", "cifar_cnn_max"),
                ("flops_vs_peak", "tf", "cifar_cnn_max"), ("feature_cache_speedup", "torch", "epoch"),
                ("feature_cache_speedup", "torch", "run"), ("feature_cache_speedup", "tf", "epoch"),
                ("feature_cache_speedup", "tf", "run"), ("decode_cache_speedup", "epoch"),
                ("decode_cache_speedup", "first_run")}
    assert set(ratios) == expected
    bad = {path: value for path, value in ratios.items() if not (math.isfinite(value) and value > 0)}
    assert not bad, bad
    assert report["devices"] == {"torch": "cpu", "tf": "cpu"} and report["machine"]["cores"] >= 1
    (latency,) = report["latency"]["rows"]
    assert [(runtime["framework"], runtime["format"], runtime["quantize"]) for runtime in latency["runtimes"]] == [
        ("torch", "native", None), ("torch", "onnx", None), ("torch", "executorch", None), ("tf", "native", None),
        ("tf", "onnx", None), ("tf", "litert", None), ("tf", "litert", "dynamic-int8")], latency
    assert all(runtime["latency"][0]["median_seconds"] > 0 for runtime in latency["runtimes"]), latency
    assert "Inference latency, batch 32" in run.stdout
    for framework in ("torch", "tf"):
        default = report["commands"]["default_run"][framework]
        assert default["phases"]["epochs"] > 0 and default["wall"] > default["phases"]["epochs"], default
        row = report["commands"]["small_images"]["rows"][0]
        assert row["arch"] == "cifar_cnn_max" and row[framework]["steady_epoch"] > 0, row
