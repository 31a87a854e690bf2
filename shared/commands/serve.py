"""What ``python -m cnnlab_<backend>.serve MODEL`` and ``cnnlab_<backend>.serve(model)`` do, written once for both
backends: put a trained model behind HTTP (``shared.serving``).

MODEL is whatever ``predict`` takes (a run directory of either framework, a study's folder, or an exported file with
its sidecar), loaded by ``predict``'s own loader, so a damaged file is refused the same way, in one line. The socket
is bound before the model loads, so a port in use is refused at once. Then the server is live, warms the model up at
batch 1 and at ``--max-batch``, and only then reports ready.
"""

from __future__ import annotations

import gc
import ipaddress
import os
import sys
from pathlib import Path
from collections.abc import Callable

import numpy as np

from shared.run.options import DEVICES
from shared.commands.cli import POSITIVE_WHOLE, OneLineParser, parse_or_exit, run_command
from shared.commands.predict import Model, Runners, check_positive, load_model
from shared.serving import server as serving
from shared.serving.app import ServedModel, Settings, create_app
from shared.util.errors import EXIT_USAGE, FlagError, UsageError

TOKEN_VARIABLE = "CNNLAB_SERVE_TOKEN"
DEFAULT_PORT, DEFAULT_MAX_BATCH, DEFAULT_MAX_BODY_MB = 8000, 32, 16.0


def cnnlab_version() -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version("cnnlab")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "0+unknown"


def usable_cores() -> int:
    """The cores this process may run on (a container's or taskset's share, not the machine's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def worker_threads(cores: int) -> int:
    """The threads of the model's runtime, and of image decoding, for a server given ``cores``: the event loop keeps
    one core to itself (it parses every upload and answers every probe), the rest compute. Measured on 2 cores with
    the ONNX digits model at 32 connections: 1,364 requests/s with one inference thread against 992 with two."""
    return max(1, cores - 1)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_token(host: str, token: str | None, no_token: bool) -> str | None:
    """The token to require, or None; ``FlagError`` when a non-loopback address would be open to anyone unasked."""
    if token is not None and no_token:
        raise FlagError("--token and --no-token contradict each other; pass one")
    if token is not None and not token.strip():
        raise FlagError("the token is empty; pass a secret of some length with --token or $" + TOKEN_VARIABLE)
    if token is None and not no_token and not is_loopback(host):
        raise FlagError(f"--host {host} lets other machines reach the model; pass --token TOKEN (or set "
                        f"${TOKEN_VARIABLE}) so that only clients with it can, or --no-token to open it to anyone")
    return token


def served_model(framework: str, loaded: Model, name: str | None, max_batch: int) -> ServedModel:
    def infer(images: np.ndarray) -> np.ndarray:
        return np.asarray(loaded.logits(images, max_batch), np.float32)

    return ServedModel(name or loaded.arch or "model", infer, tuple(loaded.classes), loaded.image_size, framework,
                       loaded.runtime, loaded.platform, loaded.description, loaded.onnx, loaded.no_onnx)


def start(framework: str, load_backend: Callable, model, host: str = "127.0.0.1", port: int = 0,
          name: str | None = None, max_batch: int = DEFAULT_MAX_BATCH, batch_delay_ms: float = 0.0,
          threads: int | None = None, token: str | None = None, no_token: bool = False,
          max_body_mb: float = DEFAULT_MAX_BODY_MB, device: str = "cpu", runners: Runners | None = None,
          set_threads: Callable[[int], None] | None = None, announce: Callable[[str], None] | None = None
          ) -> serving.Server:
    """Bind, load, start; returns the running ``Server`` (not yet ready: ``wait_ready()``)."""
    check_positive(max_batch=max_batch, threads=threads)
    if port is None or not isinstance(port, int) or not 0 <= port <= 65535:
        raise FlagError(f"port={port!r}: pass a port from 0 (any free one) to 65535")
    if not batch_delay_ms >= 0 or not max_body_mb > 0:
        raise FlagError("batch_delay_ms must be 0 or more and max_body_mb above 0")
    if name is not None and (not name or "/" in name):
        raise FlagError(f"--name {name!r}: a model name is a non-empty word without '/'")
    token = check_token(host, token, no_token)
    workers = worker_threads(threads or usable_cores())
    sock = serving.bind(host, port)
    try:
        path = Path(getattr(model, "path", model))  # a Run from train(...)
        if set_threads and path.is_dir():  # a run's model runs in the framework; a file in its own runtime
            set_threads(workers)
        loaded = load_model(framework, load_backend, path, device, runners, workers)
        # Everything loaded so far (a framework is hundreds of thousands of objects) lives as long as the server:
        # kept out of the collector's full passes, which otherwise walk it all and stall requests by 100 ms or more
        gc.collect()
        gc.freeze()
        if announce:
            announce(f"model {loaded.description}")
        settings = Settings(max_batch, batch_delay_ms / 1000, workers, token, int(max_body_mb * 2**20))
        app, _, state = create_app(served_model(framework, loaded, name, max_batch), settings, cnnlab_version())
        bound_host, bound_port = sock.getsockname()[:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        return serving.start(app, state, sock, f"http://{shown}:{bound_port}")
    except BaseException:
        sock.close()
        raise


def serve(framework: str, load_backend: Callable, model, runners: Runners | None = None,
          set_threads: Callable[[int], None] | None = None, wait: bool = True, **options) -> serving.Server:
    """The API: a running server (``.url``, ``.page``, ``.stop()``, a ``with`` block), ready unless ``wait=False``.
    ``port=0`` (the default here) takes any free port. Raises ``UsageError`` for a mistake the user can fix."""
    server = start(framework, load_backend, model, runners=runners, set_threads=set_threads, **options)
    if not wait:
        return server
    try:
        return server.wait_ready()
    except BaseException:  # a failed warm-up: nothing is left running behind the error
        server.stop()
        raise


def build_parser(framework: str) -> OneLineParser:
    parser = OneLineParser(prog=f"cnnlab_{framework}.serve", allow_abbrev=False, description="Serve a trained model "
                           "over HTTP: the Open Inference Protocol (KServe v2, as Triton speaks it), POST /predict "
                           "for image files, /metrics, and a page to try it in a browser.")
    parser.add_argument("model", type=Path, help="what predict takes: a finished run directory (either framework; "
                        "a study's folder means its best arm) or an exported .onnx, .tflite or .pte file")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s, this "
                        "machine only); any other needs --token or --no-token")
    parser.add_argument("--port", type=_port, default=DEFAULT_PORT, help="port (default: %(default)s; 0: any free)")
    parser.add_argument("--name", default=None, help="the model's name in the protocol (default: its "
                        "architecture's, e.g. digits_cnn)")
    parser.add_argument("--max-batch", type=POSITIVE_WHOLE, default=DEFAULT_MAX_BATCH,
                        help="most images in one forward pass; concurrent requests are batched up to it "
                             "(default: %(default)s)")
    parser.add_argument("--batch-delay-ms", type=_non_negative, default=0.0, metavar="MS",
                        help="how long a batch may wait for more requests to fill it; 0 sends what is queued as "
                             "soon as the model is free (default: %(default)g)")
    parser.add_argument("--threads", type=POSITIVE_WHOLE, default=None,
                        help=f"cores the server may use: its event loop takes one, and the model's runtime and "
                             f"image decoding get the rest, at least one thread each (default: the usable cores, "
                             f"{usable_cores()} here)")
    tokens = parser.add_mutually_exclusive_group()
    tokens.add_argument("--token", default=os.environ.get(TOKEN_VARIABLE),
                        help=f"require 'Authorization: Bearer TOKEN' on every route but the health probes "
                             f"(default: ${TOKEN_VARIABLE})")
    tokens.add_argument("--no-token", action="store_true", help="serve a non-loopback --host to anyone")
    parser.add_argument("--max-body-mb", type=_positive, default=DEFAULT_MAX_BODY_MB, metavar="MB",
                        help="largest request body; a larger one gets 413 before it is read (default: %(default)g)")
    parser.add_argument("--device", choices=DEVICES, default="cpu", help="where a run's native "
                        "model runs (default cpu); exported files run on the CPU in their runtime")
    return parser


def _port(text: str) -> int:
    import argparse

    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"must be a port from 0 to 65535, got {text!r}")
    return int(text)


def _non_negative(text: str) -> float:
    import argparse

    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number 0 or above, got {text!r}")
    return value


def _positive(text: str) -> float:
    import argparse

    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number above 0, got {text!r}")
    return value


def main(framework: str, load_backend: Callable, argv: list[str] | None = None, runners: Runners | None = None,
         set_threads: Callable[[int], None] | None = None) -> int:
    parser = build_parser(framework)
    args = parse_or_exit(parser, argv)
    prog = parser.prog

    def work() -> int:
        try:
            server = start(framework, load_backend, args.model, args.host, args.port, args.name, args.max_batch,
                           args.batch_delay_ms, args.threads, args.token, args.no_token, args.max_body_mb,
                           args.device, runners, set_threads, lambda line: print(f"{prog}: {line}", file=sys.stderr))
        except UsageError as error:
            print(f"{prog}: error: {error}", file=sys.stderr)
            return EXIT_USAGE
        try:
            return _serve_until_stopped(server, prog)
        except UsageError as error:  # the warm-up failed
            print(f"{prog}: error: {error}", file=sys.stderr)
            return EXIT_USAGE
        finally:
            server.stop()  # graceful: the requests already accepted are answered before the line below

    return run_command(prog, work, stopped=": answered the requests it had accepted")


def _serve_until_stopped(server: serving.Server, prog: str) -> int:
    print(f"{prog}: API {server.url}/v2 and page {server.page} (warming up; ready at "
          f"{server.url}/v2/health/ready; Ctrl-C stops)", file=sys.stderr)
    server.wait_ready(timeout=float("inf"))
    print(f"{prog}: ready", file=sys.stderr)
    while not server.join(0.5):
        pass
    return 0
