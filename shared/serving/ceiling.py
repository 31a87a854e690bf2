"""The HTTP ceiling the serve benchmark measures ``serve`` against: uvicorn with Starlette, reading the same multipart
upload and answering a small JSON, with no model. ``python -m shared.serving.ceiling --port N`` serves it."""

from __future__ import annotations

import argparse

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def predict(request: Request) -> JSONResponse:
    form = await request.form()
    sizes = [len(await item.read()) for _, item in form.multi_items() if hasattr(item, "read")]
    return JSONResponse({"images": len(sizes), "bytes": sum(sizes)})


async def ready(request: Request) -> JSONResponse:
    return JSONResponse({"ready": True})


app = Starlette(routes=[Route("/predict", predict, methods=["POST"]), Route("/v2/health/ready", ready)])

if __name__ == "__main__":
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m shared.serving.ceiling")
    parser.add_argument("--port", type=int, required=True)
    uvicorn.run(app, host="127.0.0.1", port=parser.parse_args().port, log_level="error", access_log=False)
