"""The HTTP application, the same whichever framework loaded the model: the Open Inference Protocol routes,
``POST /predict``, ``/metrics``, ``/openapi.json`` and the page.

The hot routes take the raw ``Request`` instead of a pydantic model: validating a batch of pixels through pydantic
costs more than the model's forward pass. Their bodies are documented in the schema by hand (``openapi_extra``), so
``/openapi.json`` still describes every request and answer. Every error is ``{"error": "..."}``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
import mimetypes
import re
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from shared.data.image_folder import ImageTooLarge, decode_image
from shared.formats.predictions import records
from shared.serving import schema
from shared.serving.batcher import Batcher, Stopping
from shared.serving.guard import BodyTooLarge, Guard
from shared.serving.metrics import CONTENT_TYPE, ServerMetrics
from shared.serving.protocol import HEADER_LENGTH, ProtocolError, Signature, infer_response, parse_infer

STATIC = Path(__file__).parent / "static"
# onnxruntime-web, installed by `make web` from web/package-lock.json (never committed)
ORT_DIST = Path(__file__).parent / "web" / "node_modules" / "onnxruntime-web" / "dist"
ORT_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
ORT_MISSING = "onnxruntime-web is not installed beside the server: run `make web` in the cnnlab checkout"
EXTENSIONS = ["binary_tensor_data", "classification"]
DEFAULT_TOP = 5
# Uploads up to this size are decoded on the event loop: a thumbnail decodes in tens of microseconds, less than the
# hop to a decoding thread and back; larger ones (a phone's photo takes milliseconds) go to the decoding threads so
# that the loop keeps answering.
INLINE_DECODE_BYTES = 64 * 1024


@dataclass
class ServedModel:
    """What the server serves: the model's forward pass and what the protocol and the page say about it."""
    name: str
    infer: Callable[[np.ndarray], np.ndarray]  # float32 NHWC pixels -> float32 logits
    classes: tuple[str, ...]
    image_size: int
    framework: str  # the serving command's: torch or tf
    runtime: str  # what runs the forward pass, in words (PyTorch 2.14.1, onnxruntime 1.32.0, ...)
    platform: str  # the protocol's platform string
    description: str
    onnx: Path | None  # the file the page's browser runtime loads
    no_onnx_reason: str = ""


@dataclass
class Settings:
    max_batch: int = 32
    batch_delay: float = 0.0  # seconds
    threads: int = 1
    token: str | None = None
    max_body: int = 16 * 2**20


class State:
    """What the routes share: ready after the warm-up, stopping once a stop was asked for, and why the warm-up
    failed if it did (the server then never reports ready, and its owner stops it)."""
    ready = False
    stopping = False
    failure: str | None = None


def create_app(model: ServedModel, settings: Settings, version: str) -> tuple[Guard, FastAPI, State]:
    state = State()
    signature = Signature(model.image_size, model.classes, settings.max_batch)
    decoders = concurrent.futures.ThreadPoolExecutor(settings.threads, thread_name_prefix="cnnlab-decode")
    batcher_box: list[Batcher] = []
    metrics = ServerMetrics(lambda: batcher_box[0].depth if batcher_box else 0)

    async def warm_up() -> None:
        batcher = batcher_box[0]
        try:
            for size in sorted({1, settings.max_batch}):
                await batcher.run_alone(np.zeros((size, model.image_size, model.image_size, 3), np.float32))
        except Exception as fault:  # noqa: BLE001 - a model that cannot run a batch is reported, not served
            state.failure = f"{type(fault).__name__}: {fault}"
            return
        state.ready = True

    async def lifespan(app):
        batcher = Batcher(model.infer, settings.max_batch, settings.batch_delay, metrics.batch_size.observe)
        batcher_box.append(batcher)
        batcher.start()
        warming = asyncio.get_running_loop().create_task(warm_up())
        try:
            yield
        finally:
            state.stopping = True
            warming.cancel()
            await asyncio.gather(warming, return_exceptions=True)
            await batcher.stop()
            decoders.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title=f"cnnlab serve: {model.name}", version=version, lifespan=lifespan, docs_url=None,
                  redoc_url=None, description="The Open Inference Protocol (KServe v2 REST) and image uploads, "
                  "for a model trained with cnnlab.")

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status)

    @app.exception_handler(HTTPException)
    async def http_error(request, exc: HTTPException):
        if exc.status_code == 404:
            return error(404, f"no route {request.url.path}; see /openapi.json for the routes")
        if exc.status_code == 405:
            return error(405, f"{request.method} is not allowed on {request.url.path}")
        return error(exc.status_code, str(exc.detail))

    @app.exception_handler(BodyTooLarge)
    async def too_large(request, exc: BodyTooLarge):  # a chunked body that passed the cap while a route read it
        return error(413, str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        return error(400, f"{'.'.join(map(str, first.get('loc', ())))}: {first.get('msg', 'invalid request')}")

    def not_ready() -> JSONResponse | None:
        if state.stopping:
            return error(503, "the server is stopping")
        if not state.ready:
            return error(503, "the model is warming up; ask again in a moment")
        return None

    def unknown_model(name: str, version: str | None) -> JSONResponse | None:
        if name != model.name:
            return error(404, f"unknown model {name!r}; this server serves {model.name!r}")
        if version not in (None, "1"):
            return error(404, f"model {name!r} has no version {version!r}; it has version 1")
        return None

    # --- The Open Inference Protocol -------------------------------------------------------------------------
    @app.get("/v2/health/live", responses=schema.responses(200, 503), tags=["health"])
    async def live():
        return {"live": True}

    @app.get("/v2/health/ready", responses=schema.responses(200, 503), tags=["health"])
    async def ready():
        return not_ready() or {"ready": True}

    @app.get("/v2", responses=schema.responses(200, 401), tags=["protocol"])
    async def server_metadata():
        return {"name": "cnnlab", "version": version, "extensions": EXTENSIONS}

    async def model_metadata(name: str, version: str | None = None):
        return unknown_model(name, version) or signature.metadata(model.name, model.platform)

    async def model_ready(name: str, version: str | None = None):
        return unknown_model(name, version) or not_ready() or {"name": model.name, "ready": True}

    async def infer(name: str, request: Request, version: str | None = None):
        refusal = unknown_model(name, version) or not_ready()
        if refusal:
            return refusal
        try:
            parsed = parse_infer(await request.body(), request.headers.get(HEADER_LENGTH), signature)
        except ProtocolError as fault:
            return error(400, str(fault))
        try:
            logits = await batcher_box[0].submit(parsed.images)
        except Stopping:
            return error(503, "the server is stopping")
        body, header_length = infer_response(model.name, parsed, logits, model.classes)
        headers = {HEADER_LENGTH: str(header_length)} if header_length is not None else None
        return Response(body, 200, headers, "application/octet-stream" if header_length else "application/json")

    for prefix in ("/v2/models/{name}", "/v2/models/{name}/versions/{version}"):
        app.get(prefix, responses=schema.responses(200, 401, 404), tags=["protocol"])(model_metadata)
        app.get(f"{prefix}/ready", responses=schema.responses(200, 401, 404, 503), tags=["protocol"])(model_ready)
        app.post(f"{prefix}/infer", responses=schema.responses(200, 400, 401, 404, 413, 503, ok=schema.INFER_OK),
                 tags=["protocol"],
                 openapi_extra=schema.INFER_BODY)(infer)

    # --- Images -------------------------------------------------------------------------------------------
    def decode(name: str, data: bytes) -> np.ndarray:
        try:
            return decode_image(io.BytesIO(data), model.image_size)
        except ImageTooLarge as fault:
            raise ProtocolError(f"{name}: {fault}") from None
        except Exception as fault:  # noqa: BLE001 - Pillow raises many types for a broken file; each is a 400
            detail = "not in a format Pillow reads" if "cannot identify" in str(fault) else str(fault)
            raise ProtocolError(f"{name} is not a readable image ({type(fault).__name__}: {detail})") from None

    async def uploads(request: Request) -> list[tuple[str, bytes]]:
        kind = request.headers.get("content-type", "")
        if kind.startswith("multipart/form-data"):
            try:
                form = await request.form(max_files=4096, max_fields=64)
            except Exception as fault:  # noqa: BLE001 - python-multipart's parse errors are the client's
                if isinstance(fault, BodyTooLarge):
                    raise
                raise ProtocolError(f"the multipart body could not be read ({fault})") from None
            files = [(item.filename or key, await item.read()) for key, item in form.multi_items()
                     if isinstance(item, UploadFile)]
            await form.close()
            return files
        body = await request.body()
        return [(request.query_params.get("name") or "image", body)] if body else []

    @app.post("/predict", responses=schema.responses(200, 400, 401, 413, 503, ok=schema.PREDICTIONS),
              openapi_extra=schema.PREDICT_BODY, tags=["images"])
    async def predict(request: Request):
        refusal = not_ready()
        if refusal:
            return refusal
        top = request.query_params.get("top", str(DEFAULT_TOP))
        if not top.isdigit() or int(top) < 1:
            return error(400, f"top={top!r}: pass a whole number, 1 or more")
        try:
            files = await uploads(request)
            if not files:
                raise ProtocolError("no image in the request: send image files as multipart/form-data, or one "
                                    "image as the body")
            if sum(len(data) for _, data in files) <= INLINE_DECODE_BYTES:
                pixels = [decode(name, data) for name, data in files]
            else:
                loop = asyncio.get_running_loop()
                pixels = await asyncio.gather(*(loop.run_in_executor(decoders, decode, name, data)
                                                for name, data in files))
        except ProtocolError as fault:
            return error(400, str(fault))
        images = np.stack(pixels).astype(np.float32)
        chunks = [images[start:start + settings.max_batch] for start in range(0, len(images), settings.max_batch)]
        try:
            logits = np.concatenate(await asyncio.gather(*(batcher_box[0].submit(chunk) for chunk in chunks)))
        except Stopping:
            return error(503, "the server is stopping")
        return JSONResponse(records([name for name, _ in files], logits, model.classes, min(int(top),
                                                                                              len(model.classes))))

    # --- Operations and the page ------------------------------------------------------------------------------
    @app.get("/metrics", responses=schema.responses(200, 401, ok=schema.TEXT), tags=["operations"])
    async def prometheus():
        return Response(metrics.text(), 200, media_type=CONTENT_TYPE)

    @app.get("/page/config", responses=schema.responses(200, 401), tags=["page"])
    async def page_config():
        return {"name": model.name, "framework": model.framework, "runtime": model.runtime,
                "description": model.description, "classes": list(model.classes), "image_size": model.image_size,
                "onnx": "/page/model.onnx" if model.onnx else None, "no_onnx": model.no_onnx_reason,
                "browser_runtime": None if all((ORT_DIST / name).is_file() for name in ORT_FILES) else ORT_MISSING}

    @app.get("/page/model.onnx", responses=schema.responses(200, 401, 404, ok=schema.BINARY), tags=["page"])
    async def onnx_file():
        if model.onnx is None:
            return error(404, f"this server's model has no ONNX file: {model.no_onnx_reason}")
        return FileResponse(model.onnx, media_type="application/octet-stream")

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str):
        return own_file(STATIC, name, "")

    @app.get("/ort/{name}", include_in_schema=False)
    async def ort(name: str):
        return own_file(ORT_DIST, name, f"; {ORT_MISSING}")

    def own_file(folder: Path, name: str, hint: str):
        """A file from the package's own folder: the name is looked up in its listing, never joined to a path."""
        allowed = {entry.name: entry for entry in folder.glob("*") if entry.is_file()} if folder.is_dir() else {}
        if name not in allowed:
            return error(404, f"no file {name!r}{hint}")
        media = {".mjs": "text/javascript", ".wasm": "application/wasm"}.get(allowed[name].suffix) or \
            mimetypes.guess_type(name)[0] or "application/octet-stream"
        return FileResponse(allowed[name], media_type=media)

    hot = HotRoutes(app, predict, infer)
    guarded = Guard(hot, settings.token, settings.max_body, metrics, lambda: state.stopping)
    return guarded, app, state


class HotRoutes:
    """``POST /predict`` and ``POST /v2/models/NAME[/versions/V]/infer`` called straight from the ASGI scope, the
    same handlers FastAPI's routes call, without FastAPI's middleware stack and parameter solving: measured under
    load, that stack cost as much of the event loop's time as the upload's parsing. Everything else, and these
    routes' documentation in /openapi.json, is FastAPI's."""

    INFER = re.compile(r"^/v2/models/([^/]+)(?:/versions/([^/]+))?/infer$")

    def __init__(self, app: FastAPI, predict, infer):
        self.app, self.predict, self.infer = app, predict, infer
        self.routes = {route.path: route for route in app.routes if hasattr(route, "path")}

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        path = scope["path"]
        if path == "/predict":
            scope["route"] = self.routes["/predict"]
            response = await self.predict(Request(scope, receive))
        elif match := self.INFER.match(path):
            name, version = match.groups()
            template = "/v2/models/{name}/versions/{version}/infer" if version else "/v2/models/{name}/infer"
            scope["route"] = self.routes[template]
            response = await self.infer(name, Request(scope, receive), version)
        else:
            return await self.app(scope, receive, send)
        if isinstance(response, dict):  # a refusal's JSON was returned as a plain object
            response = JSONResponse(response)
        await response(scope, receive, send)
