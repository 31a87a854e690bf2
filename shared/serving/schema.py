"""The OpenAPI description of the routes whose bodies are parsed by hand (``shared.serving.app``): the infer request
and answer of the Open Inference Protocol, the image uploads, and the error object every refusal uses."""

from __future__ import annotations

ERROR = {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}
_TENSOR = {"type": "object", "required": ["name", "shape", "datatype"], "properties": {
    "name": {"type": "string"}, "shape": {"type": "array", "items": {"type": "integer"}},
    "datatype": {"type": "string"}, "parameters": {"type": "object"},
    "data": {"type": "array", "description": "row-major values, flat or nested"}}}
INFER_REQUEST = {"type": "object", "required": ["inputs"], "properties": {
    "id": {"type": "string"}, "parameters": {"type": "object"}, "inputs": {"type": "array", "items": _TENSOR},
    "outputs": {"type": "array", "items": {"type": "object", "required": ["name"], "properties": {
        "name": {"type": "string"}, "parameters": {"type": "object", "properties": {
            "binary_data": {"type": "boolean"}, "classification": {"type": "integer", "minimum": 1}}}}}}}}
INFER_RESPONSE = {"type": "object", "required": ["model_name", "outputs"], "properties": {
    "model_name": {"type": "string"}, "model_version": {"type": "string"}, "id": {"type": "string"},
    "outputs": {"type": "array", "items": _TENSOR}}}
INFER_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": INFER_REQUEST},
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}, "description": "the JSON "
                                 "header, then the raw tensors (Inference-Header-Content-Length)"}}}}
INFER_OK = {"application/json": {"schema": INFER_RESPONSE},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
PREDICTIONS = {"type": "array", "items": {"type": "object", "required": ["image", "top"], "properties": {
    "image": {"type": "string"}, "top": {"type": "array", "items": {"type": "object", "properties": {
        "label": {"type": "string"}, "index": {"type": "integer"}, "probability": {"type": "number"}}}}}}}
PREDICT_BODY = {
    "parameters": [{"name": "top", "in": "query", "required": False,
                    "schema": {"type": "integer", "minimum": 1, "default": 5}},
                   {"name": "name", "in": "query", "required": False, "schema": {"type": "string"},
                    "description": "the image's name in the answer, for a raw body"}],
    "requestBody": {"required": True, "content": {
        "multipart/form-data": {"schema": {"type": "object", "properties": {
            "images": {"type": "array", "items": {"type": "string", "format": "binary"}}}}},
        "image/png": {"schema": {"type": "string", "format": "binary"}},
        "image/jpeg": {"schema": {"type": "string", "format": "binary"}}}}}
TEXT = {"text/plain": {"schema": {"type": "string"}}}
BINARY = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
_MEANINGS = {200: "the answer", 400: "a bad image, tensor or JSON", 401: "a missing or wrong token",
             404: "an unknown model or route", 413: "a body over the server's cap",
             503: "not ready yet (warming up), or stopping"}


def responses(*statuses: int, ok: dict | None = None) -> dict:
    """FastAPI's ``responses=`` for a route: the success's content (``ok``: a schema, or content by media type) and
    the error object for each refusal."""
    documented: dict = {}
    for status in statuses:
        if status == 200:
            if ok is None:
                continue
            content = ok if any("/" in key for key in ok) else {"application/json": {"schema": ok}}
            documented[200] = {"description": _MEANINGS[200], "content": content}
        else:
            documented[status] = {"description": _MEANINGS[status],
                                  "content": {"application/json": {"schema": ERROR}}}
    return documented
