"""The benchmark's inference latency tables (``python -m shared.bench``): every registered architecture with the
shared initial weights (no training), natively in each framework and in every file each framework exports
(onnxruntime on each framework's ONNX file, ExecuTorch from PyTorch, LiteRT float32 and dynamic-int8 from Keras),
at batch 1 and 32, median and 95th percentile (``shared.measure.latency``).

Each framework's worker exports the model to a temporary folder and times it (``shared.measure.footprint_worker``
``export_latency``), with ``--threads`` threads (default 1, as on a phone), in a worker process of its own: TensorFlow
fixes its thread count when it starts, so these workers are not the training ones.
"""

from __future__ import annotations

from dataclasses import asdict
from collections.abc import Callable

from shared.training.backend import FRAMEWORK_NAMES as NAMES
from shared.measure.latency import LatencyPlan, calls_timed
from shared.formats.runtimes import FORMATS
from shared.report.measured import latency_text

FRAMEWORKS = ("torch", "tf")


def plan(sizes: dict[str, int], classes: int, threads: int | None, latency: LatencyPlan) -> dict[str, list[dict]]:
    """Each framework's ``export_latency`` tasks, one per architecture (``sizes``: architecture -> image size)."""
    tasks = [{"task": "export_latency", "args": {"arch": arch, "classes": classes, "image_size": size,
                                                 "threads": threads or 1, "plan": asdict(latency)}}
             for arch, size in sizes.items()]
    return {framework: list(tasks) for framework in FRAMEWORKS}


def summarize(workers: dict[str, dict]) -> dict:
    """Per architecture, every runtime of both frameworks (PyTorch's first), with the threads it ran on."""
    results = {framework: [entry for entry in workers[framework]["results"] if entry["task"] == "export_latency"]
               for framework in FRAMEWORKS}
    rows = []
    for index, first in enumerate(results["torch"]):
        args = first["args"]
        runtimes = []
        for framework in FRAMEWORKS:
            entry = results[framework][index]
            assert entry["args"] == args, f"{framework}: {entry['args']} against {args}"
            runtimes += [{"framework": framework, **row} for row in entry["result"]["runtimes"]]
        rows.append({"arch": args["arch"], "image_size": args["image_size"], "runtimes": runtimes})
    plan_args = results["torch"][0]["args"]["plan"] if rows else {}
    return {"threads": workers["torch"].get("threads"), "plan": plan_args,
            "devices": {framework: workers[framework]["device"] for framework in FRAMEWORKS}, "rows": rows}


def column(runtime: dict) -> tuple[str, str, str | None]:
    return runtime["framework"], runtime["format"], runtime.get("quantize")


def column_name(key: tuple[str, str, str | None]) -> str:
    framework, format_name, quantize = key
    if format_name == "native":
        return NAMES[framework]
    if format_name == "onnx":
        return f"onnxruntime ({NAMES[framework]}'s ONNX)"
    title = FORMATS[format_name].short_title
    return f"{title} {quantize}" if quantize else title


def file_column_name(key: tuple[str, str, str | None]) -> str:
    framework, format_name, quantize = key
    title = FORMATS[format_name].short_title
    return f"{title}{' ' + quantize if quantize else ''} ({NAMES[framework]})"


def _cell(runtime: dict | None, batch: int) -> str:
    return "-" if runtime is None else latency_text(runtime, batch, failed="failed")


def _size(runtime: dict | None) -> str:
    if runtime is None or runtime.get("bytes") is None:
        return "-"
    return f"{runtime['bytes'] / 1e6:.2f}"


def format_tables(latency: dict, table: Callable[[list[str], list[list[str]]], list[str]]) -> list[list[str]]:
    """One table per batch size (architectures down, runtimes across), and one of the files' sizes."""
    rows = latency["rows"]
    if not rows:
        return []
    columns = list(dict.fromkeys(column(runtime) for row in rows for runtime in row["runtimes"]))
    by_key = [{column(runtime): runtime for runtime in row["runtimes"]} for row in rows]
    threads, plan_args = latency["threads"], latency["plan"]
    sections = []
    for batch in plan_args["batches"]:
        body = [[row["arch"], str(row["image_size"]), *(_cell(found.get(key), batch) for key in columns)]
                for row, found in zip(rows, by_key)]
        calls = [entry["calls"] for row in rows for runtime in row["runtimes"] for entry in runtime.get("latency", [])
                 if entry["batch"] == batch]
        timed = calls_timed(calls, plan_args["warmup_calls"]) if calls else "no calls"
        sections.append([f"Inference latency, batch {batch}, {threads or 'default'} thread"
                         f"{'s' if threads != 1 else ''}: ms per call, median / 95th percentile of {timed}; "
                         f"the shared initial weights, no training"]
                        + table(["architecture", "px", *map(column_name, columns)], body))
    files = [key for key in columns if key[1] != "native"]
    body = [[row["arch"], str(row["image_size"]), *(_size(found.get(key)) for key in files)]
            for row, found in zip(rows, by_key)]
    sections.append(["Exported file sizes, MB"] + table(["architecture", "px", *map(file_column_name, files)], body))
    failures = [f"{row['arch']} {column_name(column(runtime))}: {runtime['error']}" for row in rows
                for runtime in row["runtimes"] if "error" in runtime]
    if failures:
        sections.append(["Failed:"] + failures)
    return sections
