"""What every request passes before a route sees it, as plain ASGI (Starlette's ``BaseHTTPMiddleware`` costs a task
per request): the bearer token, the body cap, the cross-origin isolation headers the page's threads need, the
request metrics, and 503 once the server is stopping.

The body cap refuses a declared ``Content-Length`` over it before reading a byte, and a chunked body as soon as the
bytes read pass it; either way the answer is 413 with JSON, never a half-read request handed to a route.
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Callable

from shared.serving.metrics import ServerMetrics

# Probes must answer without a token (a load balancer has none); the page's own files are the same for everyone and
# hold nothing of the model, so a browser can load the page and then send the token with its API calls.
PUBLIC_PREFIXES = ("/v2/health/",)
PAGE_PATHS, PAGE_FOLDERS = ("/", "/favicon.ico"), ("/static/", "/ort/")
ISOLATION_HEADERS = [(b"cross-origin-opener-policy", b"same-origin"),
                     (b"cross-origin-embedder-policy", b"require-corp"),
                     (b"cross-origin-resource-policy", b"same-origin"),
                     (b"x-content-type-options", b"nosniff")]


class BodyTooLarge(Exception):
    pass


async def send_json(send, status: int, payload: dict, headers: list | None = None) -> None:
    body = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        *ISOLATION_HEADERS, *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


def is_public(path: str) -> bool:
    return path.startswith(PUBLIC_PREFIXES) or path in PAGE_PATHS or path.startswith(PAGE_FOLDERS)


class Guard:
    def __init__(self, app, token: str | None, max_body: int, metrics: ServerMetrics,
                 stopping: Callable[[], bool]):
        self.app, self.max_body, self.metrics, self.stopping = app, max_body, metrics, stopping
        self.expected = f"Bearer {token}".encode() if token else None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), [500]
        path = scope["path"]

        async def send_isolated(message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message["headers"] = [*message.get("headers", []), *ISOLATION_HEADERS]
            await send(message)

        try:
            await self._guarded(scope, receive, send_isolated, send, path, status)
        finally:
            route = scope.get("route")
            self.metrics.observe_request(getattr(route, "path", "unmatched"), scope["method"], status[0],
                                         time.perf_counter() - started)

    async def _guarded(self, scope, receive, send_isolated, send, path: str, status: list) -> None:
        if self.stopping() and not path.startswith(PUBLIC_PREFIXES):
            status[0] = 503
            return await send_json(send, 503, {"error": "the server is stopping"})
        if self.expected and not is_public(path):
            given = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):  # constant time: no timing hint of the token
                status[0] = 401
                return await send_json(send, 401, {"error": "missing or wrong token: send the header "
                                                   "'Authorization: Bearer TOKEN' with the server's token"},
                                       [(b"www-authenticate", b"Bearer")])
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body):
            status[0] = 413
            return await send_json(send, 413, {"error": self._too_large(declared.decode("latin-1"))})
        received = [0]

        async def capped_receive():
            message = await receive()
            if message["type"] == "http.request":
                received[0] += len(message.get("body", b""))
                if received[0] > self.max_body:
                    raise BodyTooLarge(self._too_large(f"more than {self.max_body}"))
            return message

        responded = [False]

        async def send_tracked(message) -> None:
            responded[0] = True
            await send_isolated(message)

        try:
            await self.app(scope, capped_receive, send_tracked)
        except BodyTooLarge:
            if not responded[0]:
                status[0] = 413
                await send_json(send, 413, {"error": self._too_large(f"more than {self.max_body}")})

    def _too_large(self, size: str) -> str:
        return (f"the request body ({size} bytes) is over the server's cap of {self.max_body} bytes; send fewer or "
                f"smaller images, or start the server with a larger --max-body-mb")
