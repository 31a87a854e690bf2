"""``python -m shared.bench --serve``: how ``serve`` performs, one row per framework's native model and per exported
runtime, each measured in its own server process on this machine in one run:

- cold start: process start to ``/v2/health/ready`` answering 200 (imports, model load and warm-up);
- the server's resident memory once ready;
- p50 and p99 latency of ``POST /predict`` with one 32x32 PNG, one request at a time;
- requests/s, p50 and p99 at 32 concurrent connections, with batching (``--max-batch 32``) and without (1).

The same load hits the HTTP ceiling, a bare uvicorn app that reads the upload and answers JSON with no model
(``shared.serving.ceiling``), and each row's throughput is printed as a share of it. The load comes from ``wrk`` when
it is installed, else from a small asyncio client here; the table says which. LitServe, when installed, is not
driven here: its figures in docs/use-the-model.md were measured by hand, side by side.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from collections.abc import Iterator

import numpy as np

from shared.util.processes import process_group

BOUNDARY = "cnnlab-bench"
CONCURRENCY = 32


def png_upload() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(buffer, "PNG")
    return (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"images\"; filename=\"digit.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + buffer.getvalue() + f"\r\n--{BOUNDARY}--\r\n".encode()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def resident_mb(pid: int) -> float:
    """The resident memory of the server's whole process group, in MB: a server that spawns workers (LitServe does)
    holds the model in them."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) != pid:  # the process group, the 5th field of /proc/PID/stat
                continue
            total += next(int(line.split()[1]) for line in (entry / "status").read_text().splitlines()
                          if line.startswith("VmRSS:"))
        except (OSError, StopIteration, ValueError, IndexError):  # gone meanwhile, or a kernel thread
            continue
    return total / 1024


@contextlib.contextmanager
def running_server(command: list[str], port: int, ready: str = "/v2/health/ready",
                   environment: dict | None = None) -> Iterator[tuple[subprocess.Popen, float]]:
    """The server process, once ready, and its cold start in seconds. It runs in a process group of its own: a stop
    or an error here kills the group, so no server outlives the command that started it; otherwise it is stopped
    with SIGTERM, as a user stops it."""
    started = time.perf_counter()
    with process_group(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                       env=environment) as process:
        yield process, _wait_ready(process, port, started, command, ready)
    process.terminate()
    try:
        process.wait(15)
    finally:  # what it started and left behind (LitServe's worker processes outlive their parent's SIGTERM)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _wait_ready(process: subprocess.Popen, port: int, started: float, command: list[str], ready: str) -> float:
    while True:
        if process.poll() is not None:
            assert process.stderr is not None  # running_server starts it with stderr=PIPE
            raise RuntimeError(f"{' '.join(command)} exited with {process.returncode}: {process.stderr.read()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{ready}", timeout=1) as answer:
                if answer.status == 200:
                    return time.perf_counter() - started
        except OSError:
            pass
        time.sleep(0.02)


# --- Load -----------------------------------------------------------------------------------------------------
def _wrk_figure(pattern: str, output: str) -> re.Match[str]:
    """The line of wrk's report that ``pattern`` matches (one wrk always prints)."""
    match = re.search(pattern, output, re.M)
    if match is None:
        raise RuntimeError(f"wrk's report has no line matching {pattern!r}:\n{output}")
    return match


def wrk_load(port: int, body: bytes, connections: int, seconds: float, folder: Path) -> dict:
    (folder / "body").write_bytes(body)
    script = folder / "upload.lua"
    script.write_text(f'wrk.method = "POST"\nlocal f = io.open("{folder / "body"}", "rb")\nwrk.body = f:read("*a")\n'
                      f'f:close()\nwrk.headers["Content-Type"] = "multipart/form-data; boundary={BOUNDARY}"\n')
    output = subprocess.run(["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{seconds:g}s", "--latency",
                             "-s", str(script), f"http://127.0.0.1:{port}/predict"], capture_output=True, text=True,
                            check=True).stdout

    def milliseconds(label: str) -> float:
        value, unit = _wrk_figure(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", output).groups()
        return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return {"requests_per_second": float(_wrk_figure(r"Requests/sec:\s+([\d.]+)", output).group(1)),
            "p50_ms": milliseconds("50%"), "p99_ms": milliseconds("99%"),
            "errors": (int(errors.group(1)) if errors else 0) + (sum(map(int, socket_errors.groups()))
                                                                 if socket_errors else 0)}


def asyncio_load(port: int, body: bytes, connections: int, seconds: float) -> dict:
    """The built-in client: ``connections`` keep-alive connections, each sending the upload again as soon as it is
    answered, for ``seconds``."""
    head = (f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}"
            f"\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    latencies: list[float] = []
    errors = [0]

    async def connection(deadline: float) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while True:  # at least one request, then until the deadline
            sent = time.perf_counter()
            writer.write(head + body)
            status = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - sent)
            errors[0] += not status.startswith(b"HTTP/1.1 200")
            if time.perf_counter() >= deadline:
                break
        writer.close()

    async def load() -> float:
        started = time.perf_counter()
        await asyncio.gather(*(connection(started + seconds) for _ in range(connections)))
        return time.perf_counter() - started

    elapsed = asyncio.run(load())
    return {"requests_per_second": len(latencies) / elapsed, "p50_ms": 1e3 * float(np.percentile(latencies, 50)),
            "p99_ms": 1e3 * float(np.percentile(latencies, 99)), "errors": errors[0], "requests": len(latencies)}


def load(port: int, body: bytes, connections: int, seconds: float, folder: Path) -> dict:
    if shutil.which("wrk"):
        return wrk_load(port, body, connections, seconds, folder)
    return asyncio_load(port, body, connections, seconds)


def one_at_a_time(port: int, body: bytes, seconds: float) -> dict:
    """Latency with one connection and one request in flight, after a first request that is not counted."""
    asyncio_load(port, body, 1, 0.05)
    result = asyncio_load(port, body, 1, seconds)
    return {"p50_ms": result["p50_ms"], "p99_ms": result["p99_ms"], "requests": result["requests"]}


# --- The peer ---------------------------------------------------------------------------------------------------
LITSERVE_VARIABLE = "CNNLAB_LITSERVE_PYTHON"
LITSERVE_MISSING = (f"no LitServe row: install litserve here, or point ${LITSERVE_VARIABLE} at a Python that has it "
                    f"(with onnxruntime, pillow and tqdm), to measure it side by side")


def litserve_python() -> str | None:
    """The interpreter that runs the LitServe peer: ``$CNNLAB_LITSERVE_PYTHON`` (LitServe pins web packages of its
    own, so it may live in a virtual environment of its own), else this one when it has LitServe."""
    import importlib.util

    return os.environ.get(LITSERVE_VARIABLE) or (sys.executable if importlib.util.find_spec("litserve") else None)


# --- The rows -------------------------------------------------------------------------------------------------
def models(folder: Path) -> list[tuple[str, str, Path]]:
    """(row, serving framework, model) for each native model and exported runtime, from fresh one-epoch runs."""
    runs = {}
    for framework in ("torch", "tf"):
        runs[framework] = folder / f"{framework}-run"
        subprocess.run([sys.executable, "-m", f"cnnlab_{framework}.train", "--epochs", "1", "--out",
                        str(runs[framework])], check=True, capture_output=True)
    rows = [("PyTorch (native)", "torch", runs["torch"]), ("Keras (native)", "tf", runs["tf"]),
            ("ONNX Runtime (PyTorch's export)", "torch", runs["torch"] / "model.onnx"),
            ("ONNX Runtime (Keras's export)", "tf", runs["tf"] / "model.onnx")]
    subprocess.run([sys.executable, "-m", "cnnlab_tf.export", str(runs["tf"]), "--format", "litert"], check=True,
                   capture_output=True)
    rows.append(("LiteRT (Keras's export)", "tf", runs["tf"] / "model.tflite"))
    exported = subprocess.run([sys.executable, "-m", "cnnlab_torch.export", str(runs["torch"]), "--format",
                               "executorch"], capture_output=True)
    if exported.returncode == 0:
        rows.append(("ExecuTorch (PyTorch's export)", "torch", runs["torch"] / "model.pte"))
    return rows


def measure_row(command: list[str], body: bytes, seconds: float, folder: Path | None,
                batchings: tuple[str, ...] = ("batched", "unbatched"), ready: str = "/v2/health/ready",
                environment: dict | None = None) -> dict:
    """One server's figures: cold start, memory and one-at-a-time latency (batched server), and the load at
    ``CONCURRENCY`` connections for each of ``batchings``. ``folder``: where wrk's script goes (None: the built-in
    client)."""
    figures: dict = {}
    for batching in batchings:
        port = free_port()
        max_batch = "32" if batching == "batched" else "1"
        with running_server([*command, "--port", str(port), "--max-batch", max_batch], port, ready,
                            environment) as (process, cold):
            if batching == "batched":
                figures["cold_start_s"] = cold
                figures["resident_mb"] = resident_mb(process.pid)
                figures["one_at_a_time"] = one_at_a_time(port, body, seconds / 2)
            figures[batching] = (load(port, body, CONCURRENCY, seconds, folder) if folder is not None else
                                 asyncio_load(port, body, CONCURRENCY, seconds))
    return figures


def served_run(run_dir: Path, framework: str, threads: int = 1, seconds: float = 2.0) -> dict:
    """``compare``'s serving figures for one run served natively by its own framework on ``threads`` threads
    (batched only, the built-in client): what its "small services" claim quotes."""
    command = [sys.executable, "-m", f"cnnlab_{framework}.serve", str(run_dir), "--threads", str(threads)]
    return {"client": "the built-in asyncio client", "concurrency": CONCURRENCY, "seconds": seconds,
            **measure_row(command, png_upload(), seconds, None, ("batched",))}


def run(seconds: float = 5.0, json_path: Path | None = None) -> dict:
    body = png_upload()
    client = "wrk" if shutil.which("wrk") else "the built-in asyncio client"
    threads = len(os.sched_getaffinity(0))
    print(f"shared.bench --serve: {CONCURRENCY} connections for {seconds:g} s per row, by {client}; {threads} "
          f"usable cores", file=sys.stderr, flush=True)
    results: dict = {"client": client, "seconds": seconds, "concurrency": CONCURRENCY, "rows": {}}
    with tempfile.TemporaryDirectory(prefix="cnnlab-bench-serve-") as temporary:
        folder = Path(temporary)
        port = free_port()
        with running_server([sys.executable, "-m", "shared.serving.ceiling", "--port", str(port)], port):
            results["ceiling"] = load(port, body, CONCURRENCY, seconds, folder)
        rows = models(folder)
        for row, framework, model in rows:
            print(f"shared.bench --serve: {row}", file=sys.stderr, flush=True)
            results["rows"][row] = measure_row([sys.executable, "-m", f"cnnlab_{framework}.serve", str(model)],
                                               body, seconds, folder)
        peer = litserve_python()
        if peer:
            onnx_file = next(model for row, _, model in rows if row.startswith("ONNX Runtime (PyTorch"))
            print(f"shared.bench --serve: LitServe (ONNX Runtime, PyTorch's export), in {peer}", file=sys.stderr,
                  flush=True)
            environment = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
            results["rows"]["LitServe (same ONNX file)"] = measure_row(
                [peer, "-m", "shared.serving.litserve_peer", str(onnx_file), "--batch-delay-ms", "5"], body,
                seconds, folder, ready="/health", environment=environment)
        else:
            results["litserve"] = LITSERVE_MISSING
            print(f"shared.bench --serve: {LITSERVE_MISSING}", file=sys.stderr, flush=True)
    print(table(results))
    if json_path:
        json_path.write_text(json.dumps(results, indent=2) + "\n")
    return results


def table(results: dict) -> str:
    ceiling = results["ceiling"]["requests_per_second"]
    lines = [f"serve: POST /predict with one 32x32 PNG; load by {results['client']}; c32 = {results['concurrency']} "
             f"connections for {results['seconds']:g} s",
             f"{'model':<32} {'cold s':>6} {'RSS MB':>7} {'c1 p50':>7} {'c1 p99':>7} {'c32 req/s':>9} {'p50':>6} "
             f"{'p99':>6} {'of ceiling':>10} {'unbatched req/s':>15} {'p50':>6} {'p99':>6} {'errors':>6}"]
    for row, figures in results["rows"].items():
        on, off, one = figures["batched"], figures["unbatched"], figures["one_at_a_time"]
        lines.append(f"{row:<32} {figures['cold_start_s']:>6.1f} {figures['resident_mb']:>7.0f} "
                     f"{one['p50_ms']:>7.2f} {one['p99_ms']:>7.2f} {on['requests_per_second']:>9.0f} "
                     f"{on['p50_ms']:>6.1f} {on['p99_ms']:>6.1f} {on['requests_per_second'] / ceiling:>10.0%} "
                     f"{off['requests_per_second']:>15.0f} {off['p50_ms']:>6.1f} {off['p99_ms']:>6.1f} "
                     f"{on['errors'] + off['errors']:>6}")
    top = results["ceiling"]
    lines.append(f"{'HTTP ceiling (no model)':<32} {'':>6} {'':>7} {'':>7} {'':>7} {ceiling:>9.0f} "
                 f"{top['p50_ms']:>6.1f} {top['p99_ms']:>6.1f} {'100%':>10}")
    lines.append("latencies in ms; RSS: the server's resident memory once ready")
    return "\n".join(lines)
