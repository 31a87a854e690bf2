"""The seed lab's theory section, rewritten from measurements: for each claim of its framework comparison, what the
two runs and ``compare``'s workers measured for each framework. Generated text only; every number comes from the
compare entry (``shared.commands.compare``: the runs' records, ``shared.measure.footprint``'s measurements and the
exports' checks) or from ``DISTRIBUTED``, which quotes docs/distributed.md."""

from __future__ import annotations

from shared.formats.runtimes import FORMATS
from shared.report.measured import int8_change, latency_at

FRAMEWORK_NAMES = {"torch": "PyTorch", "tf": "TensorFlow"}
PHONE_FORMATS = ("litert", "executorch")

# docs/distributed.md, "More than one GPU or machine": tests/test_distributed.py on the project's 2-core CPU,
# correctness against one device (float64, cifar_cnn_max, a digits epoch and a second after --resume), not speed.
DISTRIBUTED = {
    "torch": "torchrun with two CPU processes (gloo, DistributedDataParallel) ended 6.2e-16 from one process",
    "tf": "MirroredStrategy over two logical CPU devices ended 6.9e-17 from one device, and "
          "MultiWorkerMirroredStrategy with two worker processes 4.5e-16",
}
DISTRIBUTED_UNTESTED = "neither was timed against one device, nor run on GPUs (NCCL) or on two machines"


def _name(side: dict) -> str:
    return FRAMEWORK_NAMES.get(side["framework"], side["framework"])


def _ms(seconds: float) -> str:
    return f"{1000 * seconds:.3g} ms"


def _native(side: dict) -> dict:
    return next(row for row in side["runtimes"] if row["format"] == "native")


def _title(row: dict) -> str:
    title = "native" if row["format"] == "native" else FORMATS[row["format"]].short_title
    return f"{title} {row['quantize']}" if row.get("quantize") else title


def _and(items: list[str]) -> str:
    return ", ".join(items[:-1]) + f" and {items[-1]}" if len(items) > 1 else "".join(items)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 'es' if word.endswith('s') else 's'}"


def _files(side: dict) -> str:
    titles = [_title(row) for row in side["runtimes"] if row["format"] != "native"]
    if not titles:
        return "no exported file"
    return f"{_and(titles)} file{'s' if len(titles) > 1 else ''}"


def deploy_claim(entry: dict) -> str:
    """TensorFlow deploys to phones and many targets: the files each run has, their agreement, the phone files'
    latency and size, and the int8 change."""
    sides = entry["footprint"]["sides"]
    parts = [f"{_name(side)}'s run has {_files(side)}" for side in sides.values()]
    text = "; ".join(parts) + "."
    checks = [row["check"] for side in sides.values() for row in side["runtimes"] if row.get("check")]
    equal = [check["predictions_equal"] for check in checks if check.get("predictions_equal") is not None]
    floats = [check["max_abs_diff"] for check in checks if check.get("max_abs_diff") is not None
              and not check.get("quantize")]
    if equal or floats:
        agreed = []
        if equal:
            share = "all" if min(equal) == 1 else f"at least {100 * min(equal):.2f}%"
            agreed.append(f"the same class as their models on {share} of the validation images")
        if floats:
            agreed.append(f"float32 logits within {max(floats):.2g}")
        text += f" As their exports checked them, the files gave {' and '.join(agreed)}"
        onnx = entry.get("onnx")
        if onnx:
            text += (f"; the two frameworks' ONNX files gave the same class on {100 * onnx['argmax_agreement']:.2f}% "
                     f"of {onnx['images']} images")
        text += "."
    phones = []
    for side in sides.values():
        for row in side["runtimes"]:
            figures = latency_at(row, 1)
            if row["format"] in PHONE_FORMATS and figures:
                size = f" ({row['bytes'] / 1e3:,.0f} KB)" if row.get("bytes") else ""
                phones.append(f"{_title(row)} from {_name(side)} {_ms(figures['median_seconds'])}{size}")
    if phones:
        text += f" On one image (median, batch 1) the phone files took: {_and(phones)}."
    for side in sides.values():
        change = int8_change(side)
        if change:
            text += f" {_name(side)}'s int8 file changed validation accuracy by {change['points']:+.2f} points."
    lacking = [_name(side) for side in sides.values()
               if not any(row["format"] in PHONE_FORMATS for row in side["runtimes"])]
    onnx = all(any(row["format"] == "onnx" for row in side["runtimes"]) for side in sides.values())
    if not lacking:
        targets = ", and both to ONNX's many targets" if onnx else ""
        text += f" So here both frameworks deployed to a phone runtime{targets}."
    else:
        text += (f" {' and '.join(lacking)} has no phone file in its run yet, so this compare cannot judge it "
                 f"(the commands that write them are listed above).")
    return text


def service_claim(entry: dict) -> str:
    """PyTorch suits small services: native latency at batch 1 and 32, the fastest runtime, training memory."""
    sides = entry["footprint"]["sides"]
    threads = next((side.get("threads") for side in sides.values() if side.get("threads")), None)
    measured = {key: {batch: latency_at(_native(side), batch) for batch in (1, 32)} for key, side in sides.items()}
    if not any(figures[1] for figures in measured.values()):
        return "Latency was not measured in this compare."
    cells = []
    for key, side in sides.items():
        one, many = measured[key][1], measured[key][32]
        if one is None:
            cells.append(f"native {_name(side)} was not measured")
            continue
        cell = f"native {_name(side)} answered one image in {_ms(one['median_seconds'])} (p95 " \
               f"{_ms(one['p95_seconds'])})"
        if many:
            cell += f" and a batch of 32 in {_ms(many['median_seconds'])} (p95 {_ms(many['p95_seconds'])})"
        cells.append(cell)
    text = f"on {threads or '?'} thread{'s' if threads != 1 else ''}, " + "; ".join(cells) + "."
    a, b = (measured[key][1] for key in sides)
    if a and b:
        one_image = dict(zip(sides, (a["median_seconds"], b["median_seconds"])))
        faster, slower = sorted(sides, key=lambda key: one_image[key])
        ratio = one_image[slower] / one_image[faster]
        text += f" Natively, {_name(sides[faster])} was {ratio:.2g}x as fast on one image."
    rows = [(figures["median_seconds"], row, side) for side in sides.values() for row in side["runtimes"]
            if (figures := latency_at(row, 1))]
    if rows:
        seconds, row, side = min(rows, key=lambda item: item[0])
        text += f" The fastest for one image was {_title(row)} from {_name(side)}'s run, {_ms(seconds)}."
    memory = [f"{side['memory']['rss_peak_bytes'] / 1e6:,.0f} MB in {_name(side)}" for side in sides.values()
              if "rss_peak_bytes" in (side.get("memory") or {})]
    if memory:
        text += f" A training process's resident set peaked at {_and(memory)}."
    return text + _served(entry)


def _served(entry: dict) -> str:
    """The runs' native models behind ``serve``: cold start, memory, latency one at a time, throughput at 32
    connections with batching."""
    served = entry.get("served")
    if not served:
        return ""
    cells = []
    for key, figures in served.items():
        one, load = figures["one_at_a_time"], figures["batched"]
        cells.append(f"{FRAMEWORK_NAMES.get(entry['runs'][key]['framework'], key)} was ready "
                     f"{figures['cold_start_s']:.1f} s after starting, held {figures['resident_mb']:,.0f} MB, "
                     f"answered one upload in {one['p50_ms']:.1f} ms (p99 {one['p99_ms']:.1f} ms) and "
                     f"{load['requests_per_second']:,.0f} requests/s at {figures['concurrency']} connections "
                     f"(p50 {load['p50_ms']:.0f} ms, p99 {load['p99_ms']:.0f} ms)")
    return f" Served over HTTP (cnnlab serve, one 32x32 PNG per request): {'; '.join(cells)}."


def scale_claim(entry: dict) -> str:
    """TensorFlow scales: how many devices these runs used, and the distributed result of docs/distributed.md."""
    runs = entry["runs"]
    used = [f"{_name(run)} in {_plural(run.get('processes') or 1, 'process')} with "
            f"{_plural(run.get('replicas') or 1, 'replica')}" for run in runs.values()]
    several = any((run.get("processes") or 1) * (run.get("replicas") or 1) > 1 for run in runs.values())
    text = f"these runs trained {_and(used)}"
    text += ("; a compare of two runs measures no speed-up from more devices." if several else
             ", so they measure no scaling.")
    text += (f" The distributed tests (docs/distributed.md): in PyTorch, {DISTRIBUTED['torch']}; in TensorFlow, "
             f"{DISTRIBUTED['tf']}; {DISTRIBUTED_UNTESTED}.")
    return text


def gpu_claim(entry: dict) -> str:
    """Both use the GPU: the device each run trained on, the one compare measured on, and the GPU peak."""
    runs, sides = entry["runs"], entry["footprint"]["sides"]
    trained = _and([f"{_name(run)} on {run['device']}" for run in runs.values()])
    text = f"these runs trained {trained}"
    measured = [f"{_name(side)} on {side['device']}" for side in sides.values() if side.get("device")]
    if measured:
        text += f"; this compare measured {_and(measured)}"
    peaks = [f"{side['memory']['device_peak_bytes'] / 1e6:,.0f} MB in {_name(side)}"
             for side in sides.values() if (side.get("memory") or {}).get("device_peak_bytes") is not None]
    if peaks:
        text += f", and a training step's GPU peak was {_and(peaks)}."
    elif not any(str(run["device"]).startswith("cuda") for run in runs.values()):
        text += ", so these runs cannot show either framework on a GPU."
    else:
        text += "."
    return text


CLAIMS = (("TensorFlow deploys to phones and many targets", deploy_claim),
          ("PyTorch suits small services", service_claim),
          ("TensorFlow scales", scale_claim),
          ("Both use the GPU", gpu_claim))


def theory_paragraph(label: str, entry: dict) -> str:
    """The section as Markdown: a line saying what was measured, then each claim of the seed's comparison in
    italics, followed by what was measured for it, one list item a claim (a wall of text is not read)."""
    claims = "\n".join(f"- *{claim}:* {write(entry)}" for claim, write in CLAIMS)
    return f"Measured for {label} on this machine.\n\n{claims}"
