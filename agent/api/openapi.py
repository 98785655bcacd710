"""``/openapi.json`` made to say what the server sends for errors.

FastAPI documents declared error responses as ``application/json`` and adds its own 422
(``HTTPValidationError``) to every route with parameters. The server answers every error,
request validation included, with ``application/problem+json`` (agent/api/problems.py and the
body-size middleware), so the generated document is rewritten once, when first asked for:

- every 4xx/5xx response is ``application/problem+json`` with the ``Problem`` schema;
- a route behind the bearer token (it has ``security``) documents 401 and ``WWW-Authenticate``;
- a route with a request body documents 400 (malformed JSON) and 413 (body too large), and a
  JSON body 415 (sent with another Content-Type);
- FastAPI's validation schemas are dropped once nothing refers to them.

Route modules declare only what their own code raises (``problem_responses``); the statuses
above come from the machinery every route shares, so they are added here and cannot be forgotten.
"""
from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI

from agent.api.problems import PROBLEM_REF, PROBLEM_TYPE, Problem

_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
_SCHEMAS = "#/components/schemas/"
_FASTAPI_422 = "Validation Error"  # the description FastAPI gives its own 422

UNAUTHORIZED = "Missing or invalid token (`unauthorized`)"
MALFORMED = "The body is not JSON or not UTF-8 (`malformed_json`), or a header is invalid"
TOO_LARGE = "Body larger than `api.max_body_bytes` (`body_too_large`)"
NOT_JSON = "A JSON body sent with another Content-Type (`unsupported_media_type`)"
INVALID = "Input refused (`validation_failed`, one entry per field in `errors`); nothing was stored"
_WWW_AUTHENTICATE = {"WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}}}


def install_openapi(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            describe_problems(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to customise


def describe_problems(schema: dict[str, Any]) -> None:
    """Rewrite a generated OpenAPI document in place (see the module docstring)."""
    for path_item in schema.get("paths", {}).values():
        for method, operation in path_item.items():
            if method in _METHODS:
                _describe_operation(operation)
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    problem = Problem.model_json_schema(ref_template=_SCHEMAS + "{model}", mode="serialization")
    schemas.update(problem.pop("$defs", {}))
    schemas["Problem"] = problem
    # HTTPValidationError first: it is what refers to ValidationError.
    for name in ("HTTPValidationError", "ValidationError"):
        if f'"{_SCHEMAS}{name}"' not in json.dumps(schema):
            schemas.pop(name, None)


def _describe_operation(operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    if operation.get("security"):
        entry = responses.setdefault("401", {"description": UNAUTHORIZED})
        entry.setdefault("headers", {}).update(_WWW_AUTHENTICATE)
    if "requestBody" in operation:
        responses.setdefault("400", {"description": MALFORMED})
        responses.setdefault("413", {"description": TOO_LARGE})
        if "application/json" in operation["requestBody"].get("content", {}):
            responses.setdefault("415", {"description": NOT_JSON})
    if responses.get("422", {}).get("description") == _FASTAPI_422:
        responses["422"]["description"] = INVALID
    for status, entry in responses.items():
        if status[:1] in ("4", "5"):
            entry["content"] = {PROBLEM_TYPE: {"schema": {"$ref": PROBLEM_REF}}}
    operation["responses"] = dict(sorted(responses.items()))
