"""What two runs cost to train and to serve, for ``compare``: measured now, in one process run, on this machine.

For every run: the memory of a training step at its batch size, and the inference latency at batch 1 and 32 of its
native model and of every exported file in its folder (ONNX in onnxruntime, LiteRT, ExecuTorch), with each file's
size and the agreement its export checked. The framework code runs in the frameworks' benchmark workers
(``python -m cnnlab_torch.bench`` / ``cnnlab_tf.bench``, one after the other, never at the same time), which run
``shared.measure.footprint_worker``'s tasks: a run's own framework loads its native model, and ExecuTorch files,
whose runtime needs torch, go to PyTorch's worker whichever run holds them.

A file that is missing is reported with the command that writes it; nothing here fails a compare.
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from shared.measure.worker import WorkerFailed, run_worker_process
from shared.training.backend import FRAMEWORK_NAMES as NAMES
from shared.measure.latency import DEFAULT_PLAN, LatencyPlan, calls_timed
from shared.formats import records, rundir
from shared.formats.exported import sidecar_path
from shared.formats.runtimes import FORMATS, default_file_name, export_kinds, format_of
from shared.report.measured import int8_change, latency_text

WORKER_ORDER = ("torch", "tf")  # PyTorch's worker first, as the benchmark runs them
PTE_FRAMEWORK = "torch"  # ExecuTorch's Python runtime takes torch tensors (cnnlab_torch.runtime)


def deploy_files(run_dir: Path) -> list[str]:
    """The exported files in a run's folder, in ``FORMATS`` order, then by name."""
    order = {format_.suffix: index for index, format_ in enumerate(FORMATS.values())}
    found = [path for path in Path(run_dir).iterdir() if path.is_file() and path.suffix.lower() in order]
    # the float file an export writes by default first (model.tflite before model-int8.tflite)
    return [path.name for path in sorted(found, key=lambda path: (order[path.suffix.lower()],
                                                                  path.stem != "model", path.name))]


def missing_exports(run_dir: Path, framework: str) -> list[dict]:
    """The files of the run's framework that are not in its folder, each with the command that writes it."""
    missing = []
    for format_name, quantize in export_kinds(framework):
        name = default_file_name(format_name, quantize)
        if not (Path(run_dir) / name).is_file():
            flags = f" --quantize {quantize}" if quantize else ""
            missing.append({"file": name, "command": f"python -m cnnlab_{framework}.export {run_dir} --format "
                                                     f"{format_name}{flags}"})
    return missing


def export_check(run_dir: Path, metrics: dict, name: str) -> dict | None:
    """How the file agreed with the native model when it was written: its sidecar's check, or for the ONNX file
    that training writes, the run's own self-check (``metrics.json``'s ``onnx``)."""
    sidecar = sidecar_path(Path(run_dir) / name)
    if sidecar.is_file():
        description = records.read_record(sidecar, records.SIDECAR)
        check = description.get("check")
        return {**(check if isinstance(check, dict) else {}), "quantize": description.get("quantize"),
                "source": sidecar.name}
    if name == rundir.ONNX and isinstance(metrics.get("onnx"), dict):
        onnx = metrics["onnx"]
        return {"max_abs_diff": onnx.get("max_abs_diff"), "checked_images": onnx.get("checked_images"),
                "quantize": None, "source": f"{rundir.METRICS} (training's self-check)"}
    return None


def describe_side(run_dir: Path, metrics: dict) -> dict:
    """What is on disk, before anything is measured: the native checkpoint, the neutral weights and every exported
    file with its size and check, and what is missing."""
    framework = metrics["framework"]
    native = rundir.NATIVE_CHECKPOINTS[framework]
    rows: list[dict[str, Any]] = [{"format": "native", "quantize": None, "file": native,
             "bytes": (run_dir / native).stat().st_size if (run_dir / native).is_file() else None, "check": None}]
    for name in deploy_files(run_dir):
        check = export_check(run_dir, metrics, name)
        rows.append({"format": format_of(Path(name)).name, "quantize": (check or {}).get("quantize"), "file": name,
                     "bytes": (run_dir / name).stat().st_size, "check": check})
    weights = run_dir / rundir.WEIGHTS
    return {"framework": framework, "run": str(run_dir), "batch_size": metrics.get("config", {}).get("batch_size"),
            "runtimes": rows,
            "weights_bytes": weights.stat().st_size if weights.is_file() else None,
            "missing": missing_exports(run_dir, framework)}


def plan_jobs(sides: list[dict], threads: int, plan: LatencyPlan) -> dict[str, dict]:
    """Each framework's worker job: the training-memory tasks first (in a fresh process, before inference has
    allocated anything), then the latency tasks. A run's own framework times its native model and its files; an
    ExecuTorch file goes to PyTorch's worker."""
    jobs: dict[str, dict] = {}

    def job(framework: str) -> dict:
        return jobs.setdefault(framework, {"device": "cpu", "memory": [], "latency": []})

    for side in sides:
        framework, files = side["framework"], [row["file"] for row in side["runtimes"][1:]]
        own = job(framework)
        if str(side["metrics"].get("device", "cpu")).startswith("cuda"):
            own["device"] = "auto"  # on the GPU it trained on, where there is one (as evaluate reloads a run)
        own["memory"].append({"task": "train_memory", "args": {"run": side["run"]}})
        mine = [name for name in files if format_of(Path(name)).name != "executorch" or framework == PTE_FRAMEWORK]
        own["latency"].append({"task": "run_latency", "args": {"run": side["run"], "native": True, "files": mine,
                                                               "threads": threads, "plan": asdict(plan)}})
        pte = [name for name in files if name not in mine]
        if pte:
            job(PTE_FRAMEWORK)["latency"].append({"task": "run_latency", "args": {
                "run": side["run"], "native": False, "files": pte, "threads": threads, "plan": asdict(plan)}})
    return {framework: {"device": jobs[framework]["device"], "tasks": jobs[framework]["memory"]
                        + jobs[framework]["latency"]} for framework in WORKER_ORDER if framework in jobs}


def merge(sides: list[dict], workers: dict[str, dict], errors: dict[str, str]) -> None:
    """Put the workers' measurements into the sides, by run and file."""
    for side in sides:
        side["threads"] = None
        measured = {}
        for worker in workers.values():
            for entry in worker["results"]:
                if entry["args"]["run"] != side["run"]:
                    continue
                if entry["task"] == "train_memory":
                    side["memory"] = entry["result"]
                    side["device"] = worker["device"]
                else:
                    side["threads"] = worker["threads"]
                    measured.update({row["file"] if row["format"] != "native" else "native": row
                                     for row in entry["result"]["runtimes"]})
        for row in side["runtimes"]:
            found = measured.get("native" if row["format"] == "native" else row["file"])
            if found:
                row.update({key: value for key, value in found.items() if key in ("runtime", "latency", "error")})
                if row["format"] == "native":
                    row["file"] = found["file"]  # weights.npz where the checkpoint was missing
            elif side["framework"] in errors or row["format"] == "executorch" and PTE_FRAMEWORK in errors:
                row["error"] = errors.get(side["framework"]) or errors[PTE_FRAMEWORK]
        if side["framework"] in errors and "memory" not in side:
            side["memory"] = {"error": errors[side["framework"]]}


def measure(runs: list[tuple[Path, dict]], threads: int = 1, plan: LatencyPlan = DEFAULT_PLAN,
            workers: bool = True) -> list[dict]:
    """One side per run (its folder and metrics): its files, and with ``workers`` its training memory and the
    latency of each runtime. A worker that fails leaves its rows unmeasured, with its error."""
    sides = [{**describe_side(Path(run), metrics), "metrics": metrics} for run, metrics in runs]
    results, errors = {}, {}
    if workers:
        with tempfile.TemporaryDirectory(prefix="cnnlab-compare-") as folder:
            for framework, job in plan_jobs(sides, threads, plan).items():
                try:
                    results[framework] = run_worker_process(framework, job["tasks"], job["device"], Path(folder),
                                                            threads, capture=True)
                except WorkerFailed as error:
                    errors[framework] = str(error)
                    print(f"shared.compare: warning: {one_line(str(error))}; the report shows what was measured "
                          f"without it", file=sys.stderr)
    merge(sides, results, errors)
    for side in sides:
        del side["metrics"]
    return sides


def one_line(error: str) -> str:
    """A worker's error in the report: its first line (a failed worker's output stays in compare.json)."""
    lines = error.splitlines()
    return lines[0] + (" (its output is in compare.json)" if len(lines) > 1 else "") if lines else error


# What compare.md shows --------------------------------------------------------------------------------------------

def file_size(size: int | None) -> str:
    if size is None:
        return "-"
    if size < 1e6:
        return f"{size / 1e3:.0f} KB"
    return f"{size / 1e6:.1f} MB" if size < 1e9 else f"{size / 1e9:.2f} GB"


def agreement(check: dict | None) -> str:
    """The export's check in a few words."""
    if not check:
        return "-"
    parts = []
    if check.get("predictions_equal") is not None:
        parts.append(f"same class on {100 * check['predictions_equal']:.2f}% of {check['checked_images']} images")
    if check.get("max_abs_diff") is not None:
        images = "" if parts else f" on {check['checked_images']} images"
        parts.append(f"max \\|Δlogit\\| {check['max_abs_diff']:.2g}{images}")
    if check.get("quantize") and check.get("accuracy_file") is not None:
        parts.append(f"accuracy {100 * check['accuracy_native']:.2f}% → {100 * check['accuracy_file']:.2f}%")
    return ", ".join(parts)


def runtime_name(row: dict, framework: str, device: str | None) -> str:
    if row["format"] == "native":
        return f"{NAMES[framework]} ({row['runtime']}, {device})" if "runtime" in row else f"{NAMES[framework]}"
    name = f"{FORMATS[row['format']].short_title}: {row.get('runtime', FORMATS[row['format']].runtime)}"
    return f"{name}, {row['quantize']}" if row.get("quantize") else name


def memory_rows(sides: dict[str, dict]) -> list[tuple[str, str, str]]:
    """(row name, A's cell, B's cell) for the side-by-side table."""
    def rss(side: dict) -> str:
        memory = side.get("memory") or {}
        if "rss_peak_bytes" not in memory:
            return "not measured"
        since = "" if memory["rss_peak_since"] == "the steps" else ", peak since the process started"
        # a frozen backbone's run trained its head on cached features; the measured steps run the whole model
        frozen = "; the frozen backbone runs in each step, as with --no-feature-cache" if memory.get("frozen") else ""
        return (f"{memory['rss_peak_bytes'] / 1e6:,.0f} MB ({memory['rss_before_bytes'] / 1e6:,.0f} MB before the "
                f"steps{since}{frozen})")

    def device(side: dict) -> str:
        memory = side.get("memory") or {}
        if "rss_peak_bytes" not in memory:
            return "not measured"
        if memory["device_peak_bytes"] is None:
            return f"- ({side.get('device', 'cpu')})"
        return f"{memory['device_peak_bytes'] / 1e6:,.0f} MB ({memory['device_peak_source']})"

    def int8(side: dict) -> str:
        change = int8_change(side)
        if change is None:
            return "no int8 file"
        return (f"{change['points']:+.2f} points ({100 * change['native']:.2f}% → {100 * change['int8']:.2f}%, same "
                f"class on {100 * change['predictions_equal']:.2f}%)")

    a, b = sides["a"], sides["b"]
    batch = a.get("batch_size") or b.get("batch_size")
    return [(f"training step, peak resident set (batch {batch})", rss(a), rss(b)),
            ("training step, peak GPU memory", device(a), device(b)),
            ("int8 file: accuracy change", int8(a), int8(b))]


def latency_table(sides: dict[str, dict], plan: dict) -> list[str]:
    """One row per runtime of both runs: size, latency at each batch, and the file's agreement."""
    batches = plan["batches"]
    calls = [entry["calls"] for side in sides.values() for row in side["runtimes"] for entry in row.get("latency", [])]
    threads = next((side["threads"] for side in sides.values() if side.get("threads")), None)
    if calls:
        caption = (f"Inference on this machine, {threads} thread{'s' if threads != 1 else ''}: milliseconds per call, "
                   f"median / 95th percentile of {calls_timed(calls, plan['warmup_calls'])}; agreement: the file "
                   f"against its native model, as its export checked it")
    else:
        caption = "Exported files (latency not measured)"
    lines = [caption, "", "| run | runtime | file | size | " + " | ".join(f"batch {batch} ms" for batch in batches)
             + " | agreement |", "|---|---|---|---|" + "---|" * len(batches) + "---|"]
    for key, side in sides.items():
        for row in side["runtimes"]:
            cells = [key.upper(), runtime_name(row, side["framework"], side.get("device")), f"`{row['file']}`",
                     file_size(row.get("bytes")),
                     *(latency_text(row, batch, failed="not measured") for batch in batches),
                     agreement(row.get("check"))]
            lines.append("| " + " | ".join(cells) + " |")
    weights = ", ".join(f"{key.upper()} {file_size(side['weights_bytes'])}" for key, side in sides.items())
    lines += ["", f"Neutral weights (`{rundir.WEIGHTS}`, either framework loads them): {weights}."]
    errors = sorted({row["error"] for side in sides.values() for row in side["runtimes"] if "error" in row})
    lines += [f"Not measured: {one_line(error)}" for error in errors]
    missing = [(key, item) for key, side in sides.items() for item in side["missing"]]
    if missing:
        lines += ["", "Not exported yet (each command writes the file and checks it against the model):", ""]
        lines += [f"- {key.upper()} `{item['file']}`: `{item['command']}`" for key, item in missing]
    return lines
