"""``serve`` in both backends, held to what a client of a model server relies on: the Open Inference Protocol as
Triton's own client speaks it (JSON and binary tensors, classification), ``POST /predict`` giving ``predict``'s
records, JSON errors with the right statuses and never a 5xx, the token and the body cap, batching that keeps a bad
request from failing its neighbours, and the command line's one-line refusals and graceful stop.

The reference answers are computed independently: logits by onnxruntime on the run's ``model.onnx``, records by the
``predict`` command, the ONNX signature read from the file with ``onnx``."""

from __future__ import annotations

import importlib
import io
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from shared.formats import rundir
from shared.formats.tolerances import compare
from tests.support.helpers import default_run


@pytest.fixture(scope="module")
def run_dir(backend, tmp_path_factory) -> Path:
    """A finished one-epoch run of the default experiment (cifar_cnn_max on the digits)."""
    return default_run(backend, tmp_path_factory.mktemp("serve") / "run", epochs=1)


@pytest.fixture(scope="module")
def server(backend, run_dir):
    """The run served by its own framework, through the API, batching within 20 ms so that concurrent requests
    share a forward pass."""
    serve = importlib.import_module(f"cnnlab_{backend.framework}").serve
    with serve(run_dir, max_batch=8, batch_delay_ms=20, threads=1) as running:
        yield running


def png_bytes(seed: int, size: int = 32) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def request(url: str, body: bytes | None = None, headers: dict | None = None, method: str | None = None):
    """(status, headers, body) of one HTTP request; an error status is an answer here, not an exception."""
    call = urllib.request.Request(url, body, headers or {}, method=method)
    try:
        with urllib.request.urlopen(call, timeout=30) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def multipart(files: list[tuple[str, bytes]]) -> tuple[bytes, dict]:
    boundary = "cnnlab-test-boundary"
    parts = b"".join(f"--{boundary}\r\nContent-Disposition: form-data; name=\"images\"; filename=\"{name}\"\r\n"
                     f"Content-Type: image/png\r\n\r\n".encode() + data + b"\r\n" for name, data in files)
    return parts + f"--{boundary}--\r\n".encode(), {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def onnx_logits(run_dir: Path, images: np.ndarray) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(run_dir / rundir.ONNX), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: images.astype(np.float32)})[0]


def model_name(run_dir: Path) -> str:
    return json.loads((run_dir / rundir.METRICS).read_text())["arch"]


# --- The protocol -----------------------------------------------------------------------------------------------
def test_metadata_matches_the_exported_onnx(server, run_dir):
    import onnx

    graph = onnx.load(str(run_dir / rundir.ONNX)).graph

    def described(value) -> dict:
        dims = [dim.dim_value if dim.HasField("dim_value") else -1 for dim in value.type.tensor_type.shape.dim]
        return {"name": value.name, "datatype": "FP32", "shape": dims}

    name = model_name(run_dir)
    status, _, body = request(f"{server.url}/v2/models/{name}")
    metadata = json.loads(body)
    assert status == 200
    assert metadata["inputs"] == [described(graph.input[0])] and metadata["outputs"] == [described(graph.output[0])]
    assert metadata["inputs"][0]["shape"][0] == -1
    assert request(f"{server.url}/v2/models/{name}/versions/1")[0] == 200
    assert request(f"{server.url}/v2/models/{name}/versions/2")[0] == 404
    assert json.loads(request(f"{server.url}/v2/models/nope")[2])["error"].startswith("unknown model 'nope'")
    assert {"binary_tensor_data", "classification"} <= set(json.loads(request(f"{server.url}/v2")[2])["extensions"])
    for probe in ("/v2/health/live", "/v2/health/ready", f"/v2/models/{name}/ready"):
        assert request(server.url + probe)[0] == 200, probe


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_tritonclient_gets_the_onnx_logits(server, run_dir, binary):
    import tritonclient.http as triton

    client = triton.InferenceServerClient(server.url.removeprefix("http://"))
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready(model_name(run_dir))
    images = np.random.default_rng(1).uniform(0, 255, (3, 32, 32, 3)).astype(np.float32)
    tensor = triton.InferInput("images", list(images.shape), "FP32")
    tensor.set_data_from_numpy(images, binary_data=binary)
    output = triton.InferRequestedOutput("logits", binary_data=binary)
    result = client.infer(model_name(run_dir), [tensor], outputs=[output], request_id="seven")
    within, difference, bound = compare(result.as_numpy("logits"), onnx_logits(run_dir, images), "onnx_vs_native")
    assert within, f"served logits differ from onnxruntime's by {difference:.3g} (bound {bound:.3g})"
    assert result.get_response()["id"] == "seven"


def test_tritonclient_classification_extension(server, run_dir):
    import tritonclient.http as triton

    client = triton.InferenceServerClient(server.url.removeprefix("http://"))
    images = np.random.default_rng(2).uniform(0, 255, (2, 32, 32, 3)).astype(np.float32)
    tensor = triton.InferInput("images", list(images.shape), "FP32")
    tensor.set_data_from_numpy(images)
    result = client.infer(model_name(run_dir), [tensor], outputs=[triton.InferRequestedOutput("logits",
                                                                                               class_count=3)])
    rows = result.as_numpy("logits")
    expected = onnx_logits(run_dir, images)
    classes = json.loads((run_dir / rundir.METRICS).read_text())["classes"]
    assert rows.shape == (2, 3)
    for row, logits in zip(rows, expected):
        entries = [entry.decode().split(":") for entry in row]
        assert [int(index) for _, index, _ in entries] == list(np.argsort(-logits, kind="stable")[:3])
        assert [label for _, _, label in entries] == [classes[int(index)] for _, index, _ in entries]
        assert compare([float(score) for score, _, _ in entries], np.sort(logits)[::-1][:3], "onnx_vs_native")[0]


# --- Images -----------------------------------------------------------------------------------------------------
def test_predict_route_gives_the_predict_commands_records(server, run_dir, backend, tmp_path):
    files = [(f"photo-{seed}.png", png_bytes(seed, size=20 + seed)) for seed in range(3)]
    for name, data in files:
        (tmp_path / name).write_bytes(data)
    expected = importlib.import_module(f"cnnlab_{backend.framework}").predict(
        run_dir, [tmp_path / name for name, _ in files], top=3)
    body, headers = multipart(files)
    status, _, answer = request(f"{server.url}/predict?top=3", body, headers)
    assert status == 200
    served = json.loads(answer)
    assert [record["image"] for record in served] == [name for name, _ in files]
    for got, want in zip(served, expected):
        assert [entry["label"] for entry in got["top"]] == [entry["label"] for entry in want["top"]]
        # one model on other batches: only the summation order differs
        assert compare([entry["probability"] for entry in got["top"]],
                       [entry["probability"] for entry in want["top"]], "same_weights")[0]
    status, _, raw = request(f"{server.url}/predict?top=3&name=one.png", files[0][1], {"Content-Type": "image/png"})
    assert status == 200 and json.loads(raw)[0]["image"] == "one.png"
    alone = json.loads(raw)[0]["top"]
    assert [entry["label"] for entry in alone] == [entry["label"] for entry in served[0]["top"]]
    assert compare([entry["probability"] for entry in alone], [entry["probability"] for entry in served[0]["top"]],
                   "same_weights")[0]


# --- Errors -----------------------------------------------------------------------------------------------------
def infer_body(name: str = "images", shape=(1, 32, 32, 3), datatype: str = "FP32", data=None) -> bytes:
    count = int(np.prod(shape)) if all(isinstance(size, int) and size > 0 for size in shape) else 1
    return json.dumps({"inputs": [{"name": name, "shape": list(shape), "datatype": datatype,
                                   "data": data if data is not None else [0.0] * count}]}).encode()


@pytest.mark.parametrize("body, words", [
    (infer_body(name="pixels"), "unknown input 'pixels'"),
    (infer_body(shape=(1, 28, 28, 3)), "has shape [1, 28, 28, 3]"),
    (infer_body(shape=(9, 32, 32, 3)), "n from 1 to 8"),
    (infer_body(datatype="INT8"), "datatype 'INT8'"),
    (infer_body(data=[0.0] * 7), "holds 7 numbers"),
    (infer_body(data=["a"] * 3072), "only numbers"),
    (b"{\"inputs\": [", "not valid JSON"),
    (b"[1, 2]", "JSON object"),
], ids=["name", "shape", "batch", "datatype", "length", "strings", "malformed", "not-object"])
def test_bad_infer_requests_are_400_with_the_reason(server, run_dir, body, words):
    status, headers, answer = request(f"{server.url}/v2/models/{model_name(run_dir)}/infer", body,
                                      {"Content-Type": "application/json"})
    assert status == 400 and headers["content-type"] == "application/json"
    assert words in json.loads(answer)["error"]


def test_errors_are_json_with_their_status(server):
    status, _, answer = request(f"{server.url}/predict", b"not an image", {"Content-Type": "image/png"})
    assert status == 400 and "not a readable image" in json.loads(answer)["error"]
    assert request(f"{server.url}/no/such/route")[0] == 404
    assert json.loads(request(f"{server.url}/no/such/route")[2])["error"]
    assert request(f"{server.url}/predict?top=0", png_bytes(0), {"Content-Type": "image/png"})[0] == 400
    assert request(f"{server.url}/v2/health/live", b"x", method="POST")[0] == 405


def test_a_bad_request_does_not_fail_the_good_ones_batched_with_it(server, run_dir):
    """Eight requests at once, one of them a broken PNG: the others are answered, and shared forward passes."""
    import concurrent.futures

    before = metric(server, "cnnlab_batch_size_count")
    uploads = [("broken.png", b"\x89PNG\r\n\x1a\n broken")] + [(f"{i}.png", png_bytes(i)) for i in range(7)]

    def send(upload):
        return request(f"{server.url}/predict?name={upload[0]}", upload[1], {"Content-Type": "image/png"})[0]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(send, uploads))
    assert statuses == [400] + [200] * 7
    passes = metric(server, "cnnlab_batch_size_count") - before
    assert 1 <= passes < 7, f"7 concurrent good requests took {passes} forward passes; batching should share them"


def metric(server, name: str) -> float:
    text = request(f"{server.url}/metrics")[2].decode()
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))


def test_metrics_count_requests_by_route_and_status(server):
    request(f"{server.url}/no/such/route")
    text = request(f"{server.url}/metrics")[2].decode()
    assert 'cnnlab_requests_total{method="GET",route="unmatched",status="404"}' in text
    for family in ("cnnlab_request_seconds_bucket", "cnnlab_batch_size_bucket", "cnnlab_queue_depth"):
        assert family in text


def read_answer(connection: socket.socket) -> str:
    """One whole HTTP answer read off a raw connection (its head, then content-length bytes of body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += connection.recv(4096) or b"\r\n\r\n"
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(
        b"content-length:")), 0)
    while len(body) < length:
        body += connection.recv(4096) or b" " * length
    return (head + b"\r\n\r\n" + body).decode()


def test_body_cap_refuses_before_reading(backend, run_dir):
    """A declared length over the cap is refused at once; a chunked body as soon as it passes the cap."""
    serve = importlib.import_module(f"cnnlab_{backend.framework}").serve
    with serve(run_dir / rundir.ONNX, max_body_mb=0.01) as running:
        host, port = running.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as connection:
            connection.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                               b"Content-Length: 100000000\r\n\r\n")
            answer = read_answer(connection)  # sent no body at all: the answer did not wait for one
        assert answer.startswith("HTTP/1.1 413") and "over the server's cap" in answer
        chunk = b"x" * 4096
        chunked = b"".join(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n" for _ in range(5)) + b"0\r\n\r\n"
        with socket.create_connection((host, int(port)), timeout=10) as connection:
            connection.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                               b"Transfer-Encoding: chunked\r\n\r\n" + chunked)
            assert read_answer(connection).startswith("HTTP/1.1 413")


def test_token_guards_every_route_but_the_probes(backend, run_dir):
    serve = importlib.import_module(f"cnnlab_{backend.framework}").serve
    with serve(run_dir / rundir.ONNX, token="s3cret") as running:
        assert request(f"{running.url}/v2/health/ready")[0] == 200
        for path in ("/v2", f"/v2/models/{model_name(run_dir)}", "/metrics", "/page/config", "/openapi.json"):
            assert request(running.url + path)[0] == 401, path
            assert request(running.url + path, headers={"Authorization": "Bearer wrong"})[0] == 401, path
            assert request(running.url + path, headers={"Authorization": "Bearer s3cret"})[0] == 200, path


def test_page_is_cross_origin_isolated_and_static_files_stay_in_the_package(server):
    status, headers, body = request(server.page)
    assert status == 200 and b'id="predictions"' in body and b'id="runtime"' in body
    assert headers["cross-origin-opener-policy"] == "same-origin"
    assert headers["cross-origin-embedder-policy"] == "require-corp"
    assert request(f"{server.url}/static/page.js")[0] == 200
    for escape in ("/static/..%2F__init__.py", "/static/%2e%2e/app.py", "/static/../../README.md"):
        assert request(server.url + escape)[0] == 404, escape


# --- The command line ---------------------------------------------------------------------------------------------
def serve_command(framework: str, *args: str, **options) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", f"cnnlab_{framework}.serve", *args], stderr=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, **options)


def test_refusals_are_one_line_and_exit_2(backend, run_dir, tmp_path):
    onnx_file = str(run_dir / rundir.ONNX)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        cases = {
            "open to others": ([onnx_file, "--host", "0.0.0.0", "--port", "0"], "--token"),
            "port in use": ([onnx_file, "--port", port], "in use"),
            "damaged model": ([str(tmp_path / "broken.onnx"), "--port", "0"], "broken.onnx"),
            "bad flag": ([onnx_file, "--max-batch", "0"], "--max-batch"),
        }
        (tmp_path / "broken.onnx").write_bytes(b"not a model")
        for case, (args, words) in cases.items():
            process = serve_command(backend.framework, *args)
            _, stderr = process.communicate(timeout=60)
            assert process.returncode == 2, (case, stderr)
            assert len(stderr.strip().splitlines()) == 1 and words in stderr, (case, stderr)


def test_sigterm_under_load_answers_what_was_accepted_and_exits_in_one_line(backend, run_dir):
    """SIGTERM while four clients keep uploading: every answer is a 200 or a 503 ("stopping"), never a 500, and
    the server ends within 10 s with one line and no traceback (a batch formed as the server stopped once failed
    its requests with "cannot schedule new futures after shutdown")."""
    import threading

    process = serve_command(backend.framework, str(run_dir / rundir.ONNX), "--port", "0", "--max-batch", "4")
    statuses, stop_sending = [], threading.Event()
    try:
        url = None
        for line in process.stderr:
            if "API http" in line:
                url = line.split("API ")[1].split("/v2")[0]
            if line.strip().endswith(": ready"):
                break
        assert url, "the server never said where it listens"

        host, port = url.removeprefix("http://").split(":")

        def upload(index: int) -> None:
            """One keep-alive connection sending uploads back to back, as a load generator does."""
            import http.client

            connection = http.client.HTTPConnection(host, int(port), timeout=5)
            body = png_bytes(index)
            while not stop_sending.is_set():
                try:
                    connection.request("POST", "/predict", body, {"Content-Type": "image/png"})
                    answer = connection.getresponse()
                    answer.read()
                    statuses.append(answer.status)
                except (OSError, http.client.HTTPException):  # closed by the stopping server
                    return

        senders = [threading.Thread(target=upload, args=(index,)) for index in range(4)]
        for sender in senders:
            sender.start()
        time.sleep(0.5)
        answered_before = len(statuses)
        process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        _, rest = process.communicate(timeout=15)
        assert time.monotonic() - started < 10
    finally:
        stop_sending.set()
        process.kill()
    for sender in senders:
        sender.join(30)
    assert answered_before > 0 and set(statuses) <= {200, 503}, sorted(set(statuses))
    assert process.returncode == 143
    assert "Traceback" not in rest and "ERROR" not in rest and rest.strip().splitlines() == [
        f"cnnlab_{backend.framework}.serve: stopped: answered the requests it had accepted"]


# --- Past one machine ---------------------------------------------------------------------------------------------
def triton_model_config():
    """Triton's own ``ModelConfig`` message, from the protobuf module tritonclient ships (loaded from its file: the
    package's ``grpc`` part would also want grpcio, which only its import needs)."""
    import importlib.util

    import tritonclient

    path = Path(tritonclient.__file__).parent / "grpc" / "model_config_pb2.py"
    spec = importlib.util.spec_from_file_location("triton_model_config_pb2", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as error:  # noqa: BLE001 - protobuf refuses generated code newer than its runtime
        pytest.skip(f"tritonclient's model_config_pb2 does not load beside this protobuf: {error}")
    return module.ModelConfig


def test_export_triton_writes_a_repository_triton_accepts(backend, run_dir, tmp_path):
    from google.protobuf import text_format

    from shared.commands.export import main as export

    repository = tmp_path / "models"
    assert export(backend.framework, lambda: backend, [str(run_dir), "--format", "triton", "--out",
                                                      str(repository)]) == 0
    name = model_name(run_dir)
    metrics = json.loads((run_dir / rundir.METRICS).read_text())
    config = text_format.Parse((repository / name / "config.pbtxt").read_text(), triton_model_config()())
    assert config.name == name and config.platform == "onnxruntime_onnx" and config.max_batch_size == 32
    assert config.HasField("dynamic_batching")
    assert [(tensor.name, list(tensor.dims)) for tensor in config.input] == [("images", [32, 32, 3])]
    assert [(tensor.name, list(tensor.dims)) for tensor in config.output] == [("logits", [len(metrics["classes"])])]
    assert (repository / name / config.output[0].label_filename).read_text().splitlines() == metrics["classes"]
    images = np.random.default_rng(4).uniform(0, 255, (2, 32, 32, 3)).astype(np.float32)
    import onnxruntime

    session = onnxruntime.InferenceSession(str(repository / name / "1" / "model.onnx"),
                                           providers=["CPUExecutionProvider"])
    assert compare(session.run(None, {"images": images})[0], onnx_logits(run_dir, images), "onnx_runtimes")[0]
